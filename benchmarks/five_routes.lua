-- wrk: cycle through the 5 routes of adapter_apps.py
local paths = {"/users", "/users/3", "/search?q=user1", "/health", "/echo"}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
