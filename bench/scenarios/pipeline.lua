-- N requests written back to back on each connection before any answer is
-- read (HTTP/1.1 pipelining). wrk counts every response, so req/s is per
-- request, not per batch. Usage: wrk ... -s pipeline.lua URL -- 16
init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format()
  end
  pipelined = table.concat(batch)
end

request = function()
  return pipelined
end
