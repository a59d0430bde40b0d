-- Answers from the router itself: JSON bodies (cjson, as OpenResty ships it; Debian's
-- lua-cjson in the stand-in image), and the guard every phase handler runs under.
local cjson = require "cjson.safe"

local _M = {}

local function send(status, text)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(text)
    return ngx.exit(status)
end

-- A 500 of our own, as JSON with the request id (the one in the error log's line). Also the
-- error page for a 500 raised before a body could be sent (the balancer's: nginx.conf).
function _M.internal_error()
    return send(500, '{"error":"internal error","request_id":"' .. ngx.var.request_id .. '"}')
end

-- Send `body` as JSON with `status` and finish the request (access or content phase). A body
-- cjson refuses (NaN, a function...) is a 500 of our own, not a half-written answer.
function _M.json(status, body)
    local text, err = cjson.encode(body)
    if not text then
        ngx.log(ngx.ERR, "response body is not JSON: ", err)
        return _M.internal_error()
    end
    return send(status, text)
end

-- Run a phase handler; a Lua error in it is logged with its trace and the request id, and
-- answered as JSON 500 {"error": "internal error", "request_id": ...} (nginx's own answer
-- would be an HTML page): directly where a body can still be sent (access, content); from
-- the balancer, through nginx.conf's error_page 500 (@internal_error); in a header filter,
-- the upstream's answer goes on as it is.
function _M.guard(phase, fn)
    local ok, err = xpcall(fn, debug.traceback)
    if ok then
        return
    end
    ngx.log(ngx.ERR, phase, " failed (request ", ngx.var.request_id, "): ", err)
    if phase == "header" then
        return
    end
    if phase == "balancer" then
        return ngx.exit(500)
    end
    return _M.internal_error()
end

return _M
