-- wrk script: POST /cycles with five packs, each request with a new cycle number.
-- Reads CLINIC, STERILISER and TOKEN from the environment.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  n = 0
  path = "/api/v1/clinics/" .. os.getenv("CLINIC") .. "/cycles"
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("TOKEN"),
  }
  steriliser = os.getenv("STERILISER")
end

request = function()
  n = n + 1
  local number = tid * 100000000 + n
  local pack = '{"contents":"4 tube grips, 2 tips","indicator":{"type":4,"passed":true}}'
  local body = string.format(
    '{"steriliser_id":"%s","cycle_number":%d,' ..
    '"program":{"name":"134 C / 3.5 min pre-vacuum","temperature_c":134.0,"hold_minutes":3.5},' ..
    '"started_at":"2026-01-05T09:00:00Z","finished_at":"2026-01-05T09:45:00Z",' ..
    '"peak_temperature_c":135.2,"peak_pressure_kpa":315.0,"hold_minutes":4.0,' ..
    '"load_indicator":{"type":5,"passed":true},"packs":[%s,%s,%s,%s,%s]}',
    steriliser, number, pack, pack, pack, pack, pack)
  return wrk.format("POST", path, headers, body)
end
