local redis = require "resty.redis"
local red = redis:new()
-- one node's address: a key on another node answers MOVED, which is never followed
local ok, err = red:connect("redis-1", 6379)
return red:hgetall("routes")
