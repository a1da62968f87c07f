-- Each request searches a different prefix, so every answer misses the cache.
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/v1/offerings?q=p" .. counter)
end
