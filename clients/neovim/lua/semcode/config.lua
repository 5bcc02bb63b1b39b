-- Options for the plugin and the server settings it passes on.
--
-- The server validates its own settings (an unknown key fails `initialize`), but that
-- error surfaces as an LSP start failure far away from the user's config. Checking the
-- keys here, against the table in docs/protocol.md, names the mistake at `setup()`.
local M = {}

--- Every key the server accepts in initializationOptions (docs/protocol.md, "Settings").
M.server_settings = {
  embeddingModel = "string",
  rerankerModel = "string",
  embeddingProfile = "string",
  backend = "string",
  offline = "boolean",
  nThreads = "number",
  nGpuLayers = "number",
  rerank = "boolean",
  rerankDepth = "number",
  rerankBudgetMs = "number",
  rerankDocTokens = "number",
  rerankWeight = "number",
  rerankRrfK = "number",
  rrfK = "number",
  lexicalWeight = "number",
  denseWeight = "number",
  candidates = "number",
  maxFileBytes = "number",
  exclude = "table",
  includeHidden = "boolean",
  maxChunkLines = "number",
  chunkOverlapLines = "number",
  windowLines = "number",
  indexWorkers = "number",
  embedBatchTokens = "number",
  indexDir = "string",
  sharedEmbeddingCache = "boolean",
  sharedEmbeddingCacheMb = "number",
}

---@class semcode.Options
M.defaults = {
  --- Server command (list, string, or function(root_dir) -> list). nil: `semcode serve`
  --- from $PATH.
  cmd = nil,
  --- Extra environment for the server process.
  cmd_env = nil,
  --- Filetypes to attach to; nil attaches to every normal file buffer (the server
  --- indexes the whole workspace anyway, and its ignore rules decide what counts).
  filetypes = nil,
  --- Markers that identify a workspace root, searched upward from the buffer's file.
  root_markers = { ".git", ".hg", ".svn", ".jj", ".bzr" },
  --- When no marker is found: "cwd" uses the current directory if the file is inside it;
  --- false does not attach.
  root_fallback = "cwd",
  --- initializationOptions: any key of `M.server_settings`.
  init_options = {},
  --- Picker backend: "auto" (telescope > fzf-lua > vim.ui), "telescope", "fzf", "select".
  picker = "auto",
  --- Keystroke debounce for live search, in ms.
  debounce_ms = 150,
  --- Items requested per search (1..200).
  limit = 30,
  --- Extra `semcode/search` params (mode, languages, paths, kinds, rerank).
  search = {},
  --- For one-shot pickers (vim.ui.select, fzf-lua) that cannot replace their list: how
  --- long to wait for the reranked list before showing the first-stage one, in ms.
  rerank_wait_ms = 8000,
  --- Progress reporting: "notify" (begin/end via vim.notify + statusline), "statusline"
  --- (statusline only), false.
  progress = "notify",
  --- Called with (client, bufnr) when the server attaches to a buffer.
  on_attach = nil,
  --- LSP client capabilities (nil: Neovim's defaults).
  capabilities = nil,
}

M.options = vim.deepcopy(M.defaults)
M.did_setup = false

local function check_init_options(init_options)
  local errors = {}
  for key, value in pairs(init_options) do
    local expected = M.server_settings[key]
    if not expected then
      errors[#errors + 1] = ("init_options.%s: unknown server setting"):format(key)
    elseif type(value) ~= expected then
      errors[#errors + 1] = ("init_options.%s: expected %s, got %s"):format(key, expected, type(value))
    end
  end
  table.sort(errors)
  return errors
end

--- Validate options; returns a list of error strings (empty when all is well).
---@param opts table
---@return string[]
function M.validate(opts)
  local errors = check_init_options(opts.init_options or {})
  local function expect(name, ok, what)
    if not ok then
      errors[#errors + 1] = ("%s: expected %s"):format(name, what)
    end
  end
  local cmd = opts.cmd
  expect("cmd", cmd == nil or type(cmd) == "string" or type(cmd) == "function"
    or (type(cmd) == "table" and #cmd > 0), "a non-empty list, a string or a function")
  expect("filetypes", opts.filetypes == nil or type(opts.filetypes) == "table", "a list or nil")
  expect("root_markers", type(opts.root_markers) == "table", "a list")
  expect("picker", vim.tbl_contains({ "auto", "telescope", "fzf", "select" }, opts.picker),
    '"auto", "telescope", "fzf" or "select"')
  expect("debounce_ms", type(opts.debounce_ms) == "number" and opts.debounce_ms >= 0, "a number >= 0")
  expect("limit", type(opts.limit) == "number" and opts.limit >= 1 and opts.limit <= 200, "1..200")
  expect("progress", opts.progress == false or opts.progress == "notify" or opts.progress == "statusline",
    '"notify", "statusline" or false')
  return errors
end

--- Merge user options over the defaults. Lists replace (a user's root_markers is the
--- whole list), tables merge.
---@param user table|nil
---@return table options, string[] errors
function M.resolve(user)
  local opts = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), user or {})
  for _, key in ipairs({ "root_markers", "filetypes" }) do
    if user and user[key] ~= nil then
      opts[key] = user[key]
    end
  end
  if user and user.init_options and user.init_options.exclude then
    opts.init_options.exclude = user.init_options.exclude
  end
  return opts, M.validate(opts)
end

--- The server command as a list, for the given root.
---@param root string|nil
---@return string[]
function M.server_cmd(root)
  local cmd = M.options.cmd
  if type(cmd) == "function" then
    cmd = cmd(root)
  end
  if type(cmd) == "string" then
    cmd = vim.split(cmd, "%s+", { trimempty = true })
  end
  if cmd == nil then
    cmd = { "semcode", "serve" }
  end
  return cmd
end

return M
