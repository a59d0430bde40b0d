-- router.lua: the route chosen for a request and the peers its tries go to. nginx is faked
-- here (shared dicts as tables, ngx.var, ngx.ctx, the balancer's calls recorded), as are the
-- name resolution (a table of names) and Redis (store.snapshot answers a text); what is tested
-- is the router's own choice: longest prefix, round robin, passive health, retries.
local cjson = require "cjson"

local function fake_dict()
    local data = {}
    local dict = {}
    function dict:get(key) return data[key] end
    function dict:set(key, value) data[key] = value; return true end
    function dict:add(key, value)
        if data[key] ~= nil then return false, "exists" end
        data[key] = value
        return true
    end
    function dict:delete(key) data[key] = nil end
    function dict:incr(key, by, init)
        data[key] = (data[key] or init) + by
        return data[key]
    end
    return dict
end

-- nginx lets Lua write only the variables nginx.conf declares (`set $name ...`): a write to
-- any other raises there, so it raises here too. nginx's own (uri, upstream_addr...) are
-- read-only; the fake request puts them in with rawset.
local function declared_variables()
    local fh = assert(io.open("playbooks/files/openresty/nginx.conf"))
    local names = {}
    for name in fh:read("*a"):gmatch("set%s+%$([%w_]+)") do
        names[name] = true
    end
    fh:close()
    return names
end

local function fake_var()
    local declared = declared_variables()
    return setmetatable({ request_id = "r1d" }, { __newindex = function(t, name, value)
        if not declared[name] then
            error("variable \"" .. name .. "\" not found for writing", 2)
        end
        rawset(t, name, value)
    end })
end

local function fake_ngx(now)
    local fake = {
        ERR = "ERR", WARN = "WARN", status = 0, header = {}, said = {}, logged = {},
        ctx = {}, var = fake_var(), method = "GET", clock = now or 1000,
        shared = { routes_cache = fake_dict(), routes_stale = fake_dict(),
                   round_robin = fake_dict(), dns_cache = fake_dict(),
                   endpoint_down = fake_dict() },
    }
    fake.req = { get_method = function() return fake.method end }
    function fake.now() return fake.clock end
    function fake.say(...) fake.said[#fake.said + 1] = table.concat({ ... }) end
    function fake.log(level, ...) fake.logged[#fake.logged + 1] = { level, table.concat({ ... }) } end
    function fake.exit(status) fake.exited = status end
    function fake.sleep() end
    return fake
end

local function request(path, method)
    ngx.ctx, ngx.status, ngx.exited, ngx.said, ngx.header = {}, 0, nil, {}, {}
    rawset(ngx.var, "uri", path:match("^[^?]*"))
    rawset(ngx.var, "request_uri", path)
    ngx.method = method or "GET"
end

describe("router", function()
    local router, balancer, table_text
    local addresses = { ["echo-a"] = "10.0.0.2", ["echo-b"] = "10.0.0.3", ["echo-c"] = "10.0.0.4" }

    before_each(function()
        _G.ngx = fake_ngx()
        balancer = { peers = {}, more_tries = nil, failure = { "failed", 502 } }
        function balancer.set_current_peer(ip, port)
            balancer.peers[#balancer.peers + 1] = ip .. ":" .. port
            return true
        end
        function balancer.set_more_tries(n) balancer.more_tries = n; return true end
        function balancer.get_last_failure() return balancer.failure[1], balancer.failure[2] end
        package.loaded["ngx.balancer"] = balancer
        package.loaded.dns = { resolve = function(host)
            local ip = addresses[host]
            if ip then return ip end
            return nil, "no such name"
        end }
        table_text = "/api\tapi\techo-a:80 echo-b:80\n/api/v2\tv2\techo-c:8080\n"
        package.loaded.store = { snapshot = function() return table_text end }
        for _, name in ipairs({ "router", "respond", "config" }) do
            package.loaded[name] = nil
        end
        router = require "router"
    end)

    it("routes by the longest prefix and goes round the endpoints in turn", function()
        local tried = {}
        for _, path in ipairs({ "/api/users", "/api/users", "/api/users", "/api/v2/x" }) do
            request(path)
            router.route()
            assert.is_nil(ngx.exited)
            router.balance()
            tried[#tried + 1] = ngx.var.upstream_endpoint
        end
        assert.same({ "echo-a:80", "echo-b:80", "echo-a:80", "echo-c:8080" }, tried)
        assert.same({ "10.0.0.2:80", "10.0.0.3:80", "10.0.0.2:80", "10.0.0.4:8080" },
                    balancer.peers)
    end)

    it("answers 404 as JSON for a path no prefix holds", function()
        request("/other")
        router.route()
        assert.equal(404, ngx.exited)
        assert.same({ error = "no route", path = "/other" }, cjson.decode(ngx.said[1]))
    end)

    it("refuses a raw path that leaves its prefix through dot segments", function()
        request("/api/../admin")
        rawset(ngx.var, "uri", "/admin")
        router.route()
        assert.equal(400, ngx.exited)
    end)

    it("writes only the variables nginx.conf declares", function()
        assert.has_error(function() ngx.var.route_service = "api" end)
        request("/api/x")
        router.route()
        router.balance()
        assert.equal("echo-a:80", ngx.var.upstream_endpoint)
    end)

    it("routes by the path, not the query string", function()
        request("/api/x?next=/api/../admin")
        router.route()
        assert.is_nil(ngx.exited)
        assert.equal(2, #ngx.ctx.peers)
    end)

    it("names the service in the error page's JSON when every try failed", function()
        request("/api/v2/x")
        router.route()
        router.balance()
        ngx.ctx = {}  -- the error page is an internal redirect: a new ngx.ctx
        ngx.status = 502
        rawset(ngx.var, "upstream_addr", "10.0.0.4:8080")
        rawset(ngx.var, "upstream_connect_time", "-")
        router.upstream_error()
        assert.equal(502, ngx.exited)
        assert.same({ error = "no endpoint answered", service = "v2" }, cjson.decode(ngx.said[1]))
        assert.truthy(ngx.shared.endpoint_down:get("10.0.0.4:8080"))
    end)

    it("gives an idempotent request one try per endpoint, a POST one try", function()
        request("/api/x", "GET")
        router.route()
        router.balance()
        assert.equal(1, balancer.more_tries)
        balancer.more_tries = nil
        request("/api/x", "POST")
        router.route()
        router.balance()
        assert.is_nil(balancer.more_tries)
    end)

    it("marks a peer that failed down, tries the next, and skips it while down", function()
        request("/api/x")
        router.route()
        router.balance()           -- echo-a
        router.balance()           -- a retry: echo-a failed
        assert.same({ "10.0.0.2:80", "10.0.0.3:80" }, balancer.peers)
        assert.truthy(ngx.shared.endpoint_down:get("10.0.0.2:80"))
        for _ = 1, 3 do            -- while it is down, every request starts at echo-b
            request("/api/x")
            router.route()
            assert.equal(1, #ngx.ctx.peers)
            assert.equal("echo-b:80", ngx.ctx.peers[1][3])
        end
    end)

    it("answers 502 as JSON when every endpoint is down", function()
        ngx.shared.endpoint_down:set("10.0.0.2:80", "failed")
        ngx.shared.endpoint_down:set("10.0.0.3:80", "failed")
        request("/api/x")
        router.route()
        assert.equal(502, ngx.exited)
        assert.same({ error = "no endpoint up", service = "api" }, cjson.decode(ngx.said[1]))
    end)

    it("keeps one peer per endpoint for a table, and none of an older table's", function()
        request("/api/x")
        router.route()
        local first = ngx.ctx.peers[1]
        request("/api/x")
        router.route()
        request("/api/x")
        router.route()
        assert.equal(first, ngx.ctx.peers[1])  -- the same peer object, not a new one
        -- The table changes: echo-b leaves; its peer goes with the old table.
        table_text = "/api\tapi\techo-a:80\n"
        ngx.shared.routes_cache:delete("table")
        ngx.clock = ngx.clock + 5
        request("/api/x")
        router.route()
        local peers = router.decode(table_text).peers
        local names = {}
        for name in pairs(peers) do names[#names + 1] = name end
        assert.same({ "echo-a:80" }, names)
    end)
end)
