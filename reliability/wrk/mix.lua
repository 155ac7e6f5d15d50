-- The soak's request mix, in turn on each connection: GraphQL `me`, REST GET /users/me, and a
-- GraphQL page of 20 users, all with the bearer token in $TOKEN. With $DELAY_MS set, each
-- connection waits that long before each request, which paces the total rate to about
-- connections × 1000 / (DELAY_MS + latency) per second. Counts answers that are not 200 or
-- that carry GraphQL errors, and prints them (and the first few) when done.
local token = os.getenv("TOKEN")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
local me = '{"query":"{ me { id username email } }"}'
local page = '{"query":"{ users(first: 20) { nodes { id username } pageInfo { hasNextPage endCursor } } }"}'

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

errors = 0
statuses = ""
local n = 0
function request()
  n = n + 1
  local k = n % 3
  if k == 0 then
    return wrk.format("POST", "/graphql", headers, me)
  elseif k == 1 then
    return wrk.format("GET", "/users/me", headers, nil)
  else
    return wrk.format("POST", "/graphql", headers, page)
  end
end

function delay()
  return delay_ms
end

function response(status, hdrs, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    if #statuses < 200 then
      statuses = statuses .. status .. " "
    end
  end
end

function done(summary, latency, requests)
  local total, seen = 0, ""
  for _, thread in ipairs(threads) do
    total = total + thread:get("errors")
    seen = seen .. thread:get("statuses")
  end
  io.write(string.format("Failed answers: %d\n", total))
  io.write(string.format("Failed statuses: %s\n", seen))
end
