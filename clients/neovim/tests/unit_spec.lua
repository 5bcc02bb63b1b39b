-- Pure-Lua tests: options, formatting, the live search session (debounce, supersede,
-- two phases) against a fake client, statusline, command completion.
local H = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")
local config = require("semcode.config")
local search = require("semcode.search")

H.test("config: defaults are valid", function()
  local _, errors = config.resolve({})
  H.eq({}, errors, "errors")
end)

H.test("config: unknown and mistyped server settings are named", function()
  local _, errors = config.resolve({ init_options = { embedingModel = "off", rerank = "yes" } })
  H.eq({ "init_options.embedingModel: unknown server setting", "init_options.rerank: expected boolean, got string" },
    errors, "errors")
end)

H.test("config: every protocol setting is accepted", function()
  local all = {}
  for key, ty in pairs(config.server_settings) do
    all[key] = ({ string = "x", number = 1, boolean = true, table = {} })[ty]
  end
  local _, errors = config.resolve({ init_options = all })
  H.eq({}, errors, "errors")
end)

H.test("config: lists replace defaults, server_cmd splits strings", function()
  local opts = config.resolve({ root_markers = { ".root" }, cmd = "python -m semcode.lsp" })
  H.eq({ ".root" }, opts.root_markers, "root_markers")
  config.options = opts
  H.eq({ "python", "-m", "semcode.lsp" }, config.server_cmd("/x"), "cmd")
  config.options = config.resolve({})
  H.eq({ "semcode", "serve" }, config.server_cmd("/x"), "default cmd")
end)

H.test("setup rejects bad options without throwing", function()
  local msgs = H.capture_notify()
  H.eq(false, require("semcode").setup({ picker = "nope" }), "setup result")
  H.truthy(msgs[1].msg:find("picker", 1, true), "message names the option")
end)

H.test("format and position use selectionRange", function()
  local item = H.item("retry", "src/http.py", 41, { containerName = "HttpClient", kind = 6 })
  H.eq("HttpClient.retry  Method  src/http.py:42  def retry():", search.format(item), "format")
  local lnum, col = search.position(item)
  H.eq({ 42, 4 }, { lnum, col }, "position")
  item.content = "code"
  H.eq("HttpClient.retry  Method  src/http.py:42  def retry():", search.format(item), "code: no tag")
  item.content = "test"
  H.eq("HttpClient.retry  Method [test]  src/http.py:42  def retry():", search.format(item), "tag")
end)

local function new_session(fake, updates, debounce)
  return search.session({
    client = fake,
    debounce_ms = debounce or 0,
    on_update = function(state)
      updates[#updates + 1] = state
    end,
  })
end

H.test("session: debounce coalesces keystrokes into one request", function()
  local fake, updates = H.fake_client(), {}
  local s = new_session(fake, updates, 40)
  for _, q in ipairs({ "r", "re", "ret", "retry" }) do
    s:set_query(q)
  end
  H.eq(0, #fake.requests, "no request before the debounce")
  H.wait(1000, function()
    return #fake.requests == 1
  end, "one request")
  vim.wait(100)
  H.eq(1, #fake.requests, "still one request")
  H.eq("semcode/search", fake.requests[1].method, "method")
  H.eq("retry", fake.requests[1].params.query, "query")
  H.eq(config.options.limit, fake.requests[1].params.limit, "limit")
  s:close()
end)

H.test("session: a new query cancels the in-flight request and drops its answer", function()
  local fake, updates = H.fake_client(), {}
  local s = new_session(fake, updates)
  s:set_query("first")
  s:set_query("second")
  H.eq({ 1 }, fake.cancelled, "first request cancelled")
  fake:respond(1, { code = -32800, message = "cancelled" })
  fake:respond(2, nil, { searchId = "s2", items = { H.item("b", "b.py", 1) }, reranked = false, rerankPending = false })
  H.eq(1, #updates, "one update (the stale one dropped)")
  H.eq("second", updates[1].query, "query")
  H.eq("b", updates[1].items[1].name, "items")
  s:close()
end)

H.test("session: first stage, then the refined list for the same searchId", function()
  local fake, updates = H.fake_client(), {}
  local s = new_session(fake, updates)
  s:set_query("token refresh")
  local first = { H.item("a", "a.py", 1), H.item("b", "b.py", 2) }
  fake:respond(1, nil, { searchId = "s7", items = first, reranked = false, rerankPending = true, notices = { "n" } })
  H.eq(true, updates[1].pending, "pending after first stage")
  H.eq({ "a", "b" }, vim.tbl_map(function(i) return i.name end, updates[1].items), "first order")
  search.on_refined(nil, { searchId = "other", items = {}, reranked = true })
  H.eq(1, #updates, "other search's refinement ignored")
  search.on_refined(nil, { searchId = "s7", items = { first[2], first[1] }, reranked = true })
  H.eq(2, #updates, "refined update")
  H.eq({ "b", "a" }, vim.tbl_map(function(i) return i.name end, updates[2].items), "server's new order kept")
  H.eq(true, updates[2].reranked, "reranked")
  H.eq(false, updates[2].pending, "no longer pending")
  s:close()
end)

H.test("session: refinement of a superseded search is not shown; cancelSearch sent", function()
  local fake, updates = H.fake_client(), {}
  local s = new_session(fake, updates)
  s:set_query("one")
  fake:respond(1, nil, { searchId = "s1", items = { H.item("a", "a.py", 1) }, rerankPending = true })
  s:set_query("two")
  H.eq({ method = "semcode/cancelSearch", params = { searchId = "s1" } }, fake.notifications[1], "cancelSearch")
  search.on_refined(nil, { searchId = "s1", items = {}, reranked = false, cancelled = true })
  H.eq(1, #updates, "no update from the superseded search")
  s:close()
end)

H.test("session: a refinement that arrives before its response is kept", function()
  local fake, updates = H.fake_client(), {}
  local s = new_session(fake, updates)
  s:set_query("q")
  search.on_refined(nil, { searchId = "s9", items = { H.item("z", "z.py", 3) }, reranked = true })
  fake:respond(1, nil, { searchId = "s9", items = { H.item("a", "a.py", 1) }, rerankPending = true })
  H.eq(2, #updates, "both phases")
  H.eq("z", updates[2].items[1].name, "refined")
  s:close()
end)

H.test("session: empty query clears without a request; errors surface", function()
  local fake, updates = H.fake_client(), {}
  local s = new_session(fake, updates)
  s:set_query("   ")
  H.eq(0, #fake.requests, "no request")
  H.eq({}, updates[1].items, "empty list")
  s:set_query("boom")
  fake:respond(1, { code = -32602, message = "query too long" })
  H.eq("query too long", updates[2].error, "error")
  s:close()
end)

H.test("run: waits for the reranked list, or gives the first stage after wait_ms", function()
  local fake = H.fake_client()
  local got
  search.run("q", { client = fake, wait_ms = 5000 }, function(state)
    got = state
  end)
  fake:respond(1, nil, { searchId = "r1", items = { H.item("a", "a.py", 1) }, rerankPending = true })
  H.eq(nil, got, "not before the refinement")
  search.on_refined(nil, { searchId = "r1", items = { H.item("b", "b.py", 1) }, reranked = true })
  H.eq("b", got.items[1].name, "refined list")

  local fake2, got2 = H.fake_client(), nil
  search.run("q", { client = fake2, wait_ms = 50 }, function(state)
    got2 = state
  end)
  fake2:respond(1, nil, { searchId = "r2", items = { H.item("a", "a.py", 1) }, rerankPending = true })
  H.wait(1000, function()
    return got2
  end, "timeout fallback")
  H.eq("a", got2.items[1].name, "first stage after timeout")
  H.eq(true, got2.timed_out, "timed_out")
  H.eq("semcode/cancelSearch", fake2.notifications[1].method, "rerank stopped")
end)

H.test("statusline: empty without a server; describe() summarises a Status", function()
  local status = require("semcode.status")
  H.eq("", status.statusline(), "no client")
  local text = status.describe({
    version = "0.1.0", protocolVersion = 1, state = "embedding", degraded = { "reranker missing" },
    models = { embedder = { state = "loaded", path = "/m.gguf" } },
    workspaces = { { root = "/ws", files = 3, chunks = 9, embedded = 4, pendingEmbeddings = 5,
      progress = { message = "embedding 4/9 chunks" } } },
  })
  H.truthy(text:find("semcode 0.1.0 (protocol 1): embedding", 1, true), "header")
  H.truthy(text:find("embedder: loaded /m.gguf", 1, true), "model")
  H.truthy(text:find("/ws: 3 files, 9 chunks, 4 embedded, 5 pending", 1, true), "workspace")
  H.truthy(text:find("degraded: reranker missing", 1, true), "degraded")
end)

H.test(":Semcode completion and picker backend without telescope/fzf", function()
  local commands = require("semcode.commands")
  local subs = commands.complete("", "Semcode ")
  table.sort(subs)
  H.eq({ "reindex", "related", "search", "status" }, subs, "subcommands")
  H.eq({ "full" }, commands.complete("", "Semcode reindex "), "reindex args")
  H.eq("select", require("semcode.pickers").backend("auto"), "backend")
  H.eq(2, vim.fn.exists(":Semcode"), ":Semcode defined")
end)

H.test("root detection: markers, cwd fallback, never $HOME", function()
  local client = require("semcode.client")
  config.options = config.resolve({})
  local ws = H.workspace({ ["pkg/mod.py"] = "x = 1\n" })
  vim.cmd.edit(ws .. "/pkg/mod.py")
  H.eq(ws, client.find_root(0), "marker root")
  local bare = vim.fs.normalize(vim.fn.tempname() .. "-bare")
  vim.fn.mkdir(bare .. "/sub", "p")
  vim.fn.writefile({ "y = 2" }, bare .. "/sub/f.py")
  vim.cmd.cd(bare)
  vim.cmd.edit(bare .. "/sub/f.py")
  H.eq(vim.uv.cwd(), client.find_root(0), "cwd fallback")
  vim.cmd.cd(vim.uv.os_homedir())
  H.eq(nil, client.find_root(0), "no fallback to $HOME")
  H.eq(true, client.should_attach(0), "normal file")
  vim.cmd.enew()
  H.eq(false, client.should_attach(0), "unnamed buffer")
  config.options = config.resolve({ filetypes = { "lua" } })
  vim.cmd.edit(bare .. "/sub/f.py")
  H.eq(false, client.should_attach(0), "filtered filetype")
  config.options = config.resolve({})
end)

H.test(":checkhealth semcode says how to install a missing server", function()
  config.options = config.resolve({ cmd = { "semcode-not-installed-for-this-test", "serve" } })
  vim.cmd("checkhealth semcode")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  vim.cmd("bwipeout")
  config.options = config.resolve({})
  H.truthy(text:find("server command not found: semcode-not-installed-for-this-test", 1, true), text)
  H.truthy(text:find("pipx install semcode-<version>-py3-none-any.whl", 1, true), "install hint in: " .. text)
end)

H.test("plain packadd: :Semcode, :checkhealth and the telescope extension are found", function()
  local pack = vim.fn.tempname() .. "-pack"
  vim.fn.mkdir(pack .. "/pack/semcode/opt", "p")
  vim.uv.fs_symlink(H.plugin_dir, pack .. "/pack/semcode/opt/semcode.nvim")
  local res = vim.system({ vim.v.progpath, "--headless", "--clean", "--cmd", "set packpath^=" .. pack,
    "-c", "packadd semcode.nvim",
    "-c", "lua io.stdout:write(vim.fn.exists(':Semcode'), ' ', #vim.api.nvim_get_runtime_file('lua/telescope/_extensions/semcode.lua', false), ' ', #vim.api.nvim_get_runtime_file('lua/semcode/health.lua', false))",
    "-c", "qa!" }, { text = true }):wait(20000)
  H.eq("2 1 1", vim.trim(res.stdout), "command, extension, health module")
end)

H.finish()
