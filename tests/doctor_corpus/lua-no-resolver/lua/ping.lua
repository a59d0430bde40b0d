local _M = {}

function _M.run()
    local red = require("resty.redis"):new()
    local ok, err = red:connect("redis", 6379)
    ngx.say(ok and "PONG" or err)
end

return _M
