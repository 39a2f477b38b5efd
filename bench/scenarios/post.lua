-- A POST with a body of N bytes (default 1 MiB), built once per thread; the
-- app echoes it back. Usage: wrk ... -s post.lua URL -- 1048576
init = function(args)
  local size = tonumber(args[1]) or 1048576
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.body = string.rep("x", size)
end
