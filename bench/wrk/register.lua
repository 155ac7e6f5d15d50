-- Registers a new user per request: names are unique per run ($RUN, and $REPEAT when a scenario
-- runs more than once), thread and counter.
-- Counts answers that are not 200 or that carry GraphQL errors.
local run = os.getenv("RUN") .. "_" .. (os.getenv("REPEAT") or "0")
local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

errors = 0
function request()
  counter = counter + 1
  local name = string.format("r%s_%d_%d", run, id, counter)
  local body = string.format(
    '{"query":"mutation($i: RegisterInput!){register(input:$i){expiresIn}}","variables":{"i":{"username":"%s","email":"%s@example.com","password":"bench password 1"}}}',
    name, name)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("errors")
  end
  io.write(string.format("Failed answers: %d\n", total))
end
