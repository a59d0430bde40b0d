-- A small JSON encoder: the Debian stand-in image has no cjson, and the responses are small.
local _M = {}

local function quote(s)
    return '"' .. (s:gsub('[%c"\\]', function(c)
        return string.format("\\u%04x", c:byte())
    end)) .. '"'
end

function _M.encode(value)
    local kind = type(value)
    if kind == "string" then
        return quote(value)
    elseif kind == "number" or kind == "boolean" then
        return tostring(value)
    elseif kind ~= "table" then
        return "null"
    end
    local parts = {}
    if #value > 0 then
        for i, item in ipairs(value) do
            parts[i] = _M.encode(item)
        end
        return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for key in pairs(value) do
        keys[#keys + 1] = tostring(key)
    end
    table.sort(keys)
    for i, key in ipairs(keys) do
        parts[i] = quote(key) .. ":" .. _M.encode(value[key])
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

-- Send `body` as JSON with `status` and finish the request (from access or content phase).
function _M.send(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(_M.encode(body))
    return ngx.exit(status)
end

return _M
