-- A headless session, narrated: start semcode on a small workspace, search by meaning,
-- pick a result through the vim.ui.select picker, land on the symbol.
--   nvim --headless --clean -l clients/neovim/tests/demo.lua   (SEMCODE_SERVER_CMD as in run.sh)
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")
local say = H.out

local ws = H.workspace({
  ["src/auth/tokens.py"] = "import time\n\n\ndef refresh_expired_token(session):\n    \"\"\"Refresh the access token when it has expired.\"\"\"\n    if session.expires_at < time.time():\n        session.token = session.renew()\n    return session.token\n",
  ["src/http/client.py"] = "class HttpClient:\n    def retry_request(self, request, attempts=3):\n        for _ in range(attempts):\n            pass\n",
  ["src/db/pool.py"] = "def open_connection_pool(url, size=4):\n    return [url] * size\n",
})
local cmd = H.server_cmd() or { "semcode", "serve" }
say("$ nvim  (workspace " .. ws .. ")")
say(":lua require('semcode').setup({ cmd = " .. vim.inspect(cmd) .. ", init_options = { embeddingModel = 'off', rerankerModel = 'off' } })")
vim.notify = function(msg) say("[notify] " .. msg) end
require("semcode").setup({ cmd = cmd, init_options = { embeddingModel = "off", rerankerModel = "off",
  indexDir = vim.fn.tempname() .. "-index" } })
vim.cmd.edit(ws .. "/src/db/pool.py")
say(":edit src/db/pool.py")
H.wait(30000, function()
  local c = require("semcode.client").get()
  return c and c.initialized
end, "server")
H.wait(30000, function()
  return require("semcode").status():find("ready", 1, true)
end, "ready")
say("statusline: " .. require("semcode").status())

local query = "where do we refresh expired tokens"
vim.ui.input = function(opts, on_confirm)
  say(opts.prompt .. query)
  on_confirm(query)
end
vim.ui.select = function(items, opts, on_choice)
  say(opts.prompt)
  for i, item in ipairs(items) do
    say(("  %d. %s"):format(i, opts.format_item(item)))
  end
  say("pick 1")
  on_choice(items[1])
end
say(":Semcode search")
vim.cmd("Semcode search")
H.wait(10000, function()
  return vim.api.nvim_buf_get_name(0):find("tokens.py", 1, true)
end, "jump")
local row, col = unpack(vim.api.nvim_win_get_cursor(0))
say(("landed: %s:%d:%d"):format(vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ":."), row, col + 1))
say(("line %d: %s"):format(row, vim.api.nvim_get_current_line()))
say("cursor word: " .. vim.fn.expand("<cword>"))
H.finish()
