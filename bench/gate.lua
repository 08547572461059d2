-- bench/gate's wrk script: requests for random clients of 100,000 in two
-- sites; a grant's token is reported on the thread's next request. Prints
-- the first 5xx replies ("5xx STATUS BODY") on stderr.
local token = os.getenv("TOKEN")
local pending = {}
local hdr = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}

request = function()
  local t = table.remove(pending)
  if t then
    return wrk.format("POST", "/v1/upgrade/report", hdr,
      '{"token":"' .. t .. '","outcome":"success","version":"7.0"}')
  end
  local site = math.random(2) == 1 and "par" or "ber"
  local id = string.format("%s-%05d", site, math.random(0, 49999))
  return wrk.format("POST", "/v1/upgrade/request", hdr,
    '{"client":"' .. id .. '","product":"agent","version":"6.0"}')
end

local failed = 0
response = function(status, headers, body)
  -- a 4xx is the script's own doing (a client granted twice in a row is
  -- reported twice); a 5xx is the daemon's: shown (the first few)
  if status >= 500 and failed < 3 then
    failed = failed + 1
    io.stderr:write("5xx " .. status .. " " .. body .. "\n")
  end
  local t = body:match('"decision":"grant","token":"(%x+)"')
  if t then table.insert(pending, t) end
end
