"""schemathesis hooks for user-api (loaded by reliability/run.py through SCHEMATHESIS_HOOKS).

schemathesis's own `not_a_server_error` counts every GraphQL `errors` entry that is not a
validation error as a server fault, but user-api's contract reports expected outcomes there:
UNAUTHENTICATED for a revoked token, BAD_USER_INPUT for a bad argument, CONFLICT for a taken
name. `graphql_no_server_fault` instead fails on what is a server fault: an HTTP 5xx, a body
that is not a GraphQL response, an error without `extensions.code`, or one whose code is
INTERNAL_SERVER_ERROR or SERVICE_UNAVAILABLE (the suite's MariaDB and Redis stay up).
"""

import json

import schemathesis

SERVER_FAULTS = {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"}


@schemathesis.check
def graphql_no_server_fault(ctx, response, case):
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}")
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"the body is not JSON: {e}") from e
    if not isinstance(body, dict) or not ("data" in body or "errors" in body):
        raise AssertionError("the body is not a GraphQL response")
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code is None:
            raise AssertionError(f"an error without extensions.code: {error}")
        if code in SERVER_FAULTS:
            raise AssertionError(f"{code}: {error.get('message')}")
    return None
