-- respond.lua: JSON answers, and the guard every phase handler runs under. nginx is faked
-- here (a table standing in for `ngx`): what is tested is what the guard does with an error.
local cjson = require "cjson"

local function fake_ngx()
    local fake = { ERR = "ERR", status = 0, header = {}, var = { request_id = "r1d" },
                   said = {}, logged = {}, exited = nil }
    function fake.say(...) fake.said[#fake.said + 1] = table.concat({ ... }) end
    function fake.log(level, ...) fake.logged[#fake.logged + 1] = { level, table.concat({ ... }) } end
    function fake.exit(status) fake.exited = status end
    return fake
end

describe("respond", function()
    local respond
    before_each(function()
        _G.ngx = fake_ngx()
        package.loaded.respond = nil
        respond = require "respond"
    end)

    it("sends a body as JSON with its status", function()
        respond.json(404, { error = "no route", path = "/x" })
        assert.equal(404, ngx.status)
        assert.equal("application/json", ngx.header["Content-Type"])
        assert.same({ error = "no route", path = "/x" }, cjson.decode(ngx.said[1]))
        assert.equal(404, ngx.exited)
    end)

    it("answers 500 rather than a body that is not JSON", function()
        respond.json(200, { value = 0 / 0 })
        assert.equal(500, ngx.status)
        assert.same({ error = "internal error", request_id = "r1d" }, cjson.decode(ngx.said[1]))
        assert.equal("ERR", ngx.logged[1][1])
    end)

    it("leaves a handler that works alone", function()
        local ran = false
        respond.guard("access", function() ran = true end)
        assert.is_true(ran)
        assert.same({}, ngx.logged)
        assert.is_nil(ngx.exited)
    end)

    it("answers a Lua error in the access phase as JSON 500 with the request id, trace logged",
       function()
        respond.guard("access", function() local t = nil; return t.field end)
        assert.equal(500, ngx.status)
        assert.equal("application/json", ngx.header["Content-Type"])
        assert.same({ error = "internal error", request_id = "r1d" }, cjson.decode(ngx.said[1]))
        assert.equal(500, ngx.exited)
        local level, text = ngx.logged[1][1], ngx.logged[1][2]
        assert.equal("ERR", level)
        assert.matches("access failed %(request r1d%)", text)
        assert.matches("attempt to index", text)
        assert.matches("stack traceback", text)
    end)

    it("ends the balancer with 500 (nginx.conf's error page answers the JSON)", function()
        respond.guard("balancer", function() error("boom") end)
        assert.equal(500, ngx.exited)
        assert.same({}, ngx.said)
        assert.matches("boom", ngx.logged[1][2])
    end)

    it("lets the answer go on after an error in a header filter, logged", function()
        respond.guard("header", function() error("boom") end)
        assert.is_nil(ngx.exited)
        assert.same({}, ngx.said)
        assert.matches("header failed %(request r1d%)", ngx.logged[1][2])
    end)
end)
