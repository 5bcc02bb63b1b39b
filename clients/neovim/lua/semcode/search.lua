-- Searching: a live session (debounce, supersede, two phases) and helpers every picker
-- shares (formatting an item, turning it into a location, jumping to it).
--
-- Two phases (docs/protocol.md): the `semcode/search` response carries the first-stage
-- list; when `rerankPending` is true a `semcode/searchRefined` notification with the same
-- `searchId` later carries the reranked list. Pickers get both through one callback.
local client_mod = require("semcode.client")
local config = require("semcode.config")

local M = {}

local REQUEST_CANCELLED = -32800

-- searchId -> callback(params) for searches awaiting their refined list.
local waiting = {}
-- Refined notifications that arrived before their response was processed (they are
-- scheduled separately; keep a few so ordering can never lose one).
local early, early_order = {}, {}

--- Handler for `semcode/searchRefined` (registered per client in client.lua).
function M.on_refined(_, params)
  if type(params) ~= "table" or params.searchId == nil then
    return
  end
  local cb = waiting[params.searchId]
  if cb then
    waiting[params.searchId] = nil
    cb(params)
    return
  end
  early[params.searchId] = params
  early_order[#early_order + 1] = params.searchId
  if #early_order > 16 then
    early[table.remove(early_order, 1)] = nil
  end
end

--- Call `cb` with the refined params of `search_id` (now if they already came).
function M.await_refined(search_id, cb)
  local got = early[search_id]
  if got then
    early[search_id] = nil
    cb(got)
  else
    waiting[search_id] = cb
  end
end

function M.forget(search_id)
  if search_id ~= nil then
    waiting[search_id] = nil
    early[search_id] = nil
  end
end

-- LSP SymbolKind -> short name (vim.lsp.protocol.SymbolKind maps both ways).
function M.kind_name(kind)
  return vim.lsp.protocol.SymbolKind[kind] or "Text"
end

--- The absolute file name of an item.
function M.filename(item)
  return vim.uri_to_fname(item.uri)
end

--- 1-based line/0-based byte column of the item's name, for pickers' entries. Exact
--- for ASCII; `M.jump` converts UTF-16 properly.
function M.position(item)
  local r = item.selectionRange or item.range
  return r.start.line + 1, r.start.character
end

--- "Kind", or "Kind [test]" for anything that is not implementation code (the item's
--- content kind; servers without content kinds send none: code).
function M.kind_label(item)
  local kind = M.kind_name(item.kind)
  if type(item.content) == "string" and item.content ~= "code" then
    return ("%s [%s]"):format(kind, item.content)
  end
  return kind
end

--- One line for a list: "name  Kind  path:line  preview".
function M.format(item)
  local lnum = M.position(item)
  local name = item.name ~= "" and item.name or "<chunk>"
  if item.containerName and item.containerName ~= "" then
    name = item.containerName .. "." .. name
  end
  local preview = vim.trim(item.preview or "")
  return ("%s  %s  %s:%d  %s"):format(name, M.kind_label(item), item.path or M.filename(item), lnum, preview)
end

local split_cmds = { edit = nil, split = "split", vsplit = "vsplit", tab = "tab split" }

-- LSP character offset (in the server's position encoding) -> byte column.
local function byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col
  if vim.fn.has("nvim-0.11") == 1 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  end
  return ok and col or #line
end

--- Jump to an item: "edit" (current window), "split", "vsplit" or "tab".
--- (Not vim.lsp.util.show_document: it calls expand("<cword>") for the tagstack, which
--- throws E348 when the picker was opened from an empty buffer.)
---@param item table SearchItem
---@param how string|nil
---@param client vim.lsp.Client|nil for its position encoding
function M.jump(item, how, client)
  how = how or "edit"
  if split_cmds[how] then
    vim.cmd(split_cmds[how])
  end
  client = client or client_mod.get()
  local encoding = client and client.offset_encoding or "utf-16"
  local bufnr = vim.uri_to_bufnr(item.uri)
  vim.cmd("normal! m'") -- jumplist: <C-o> returns
  vim.bo[bufnr].buflisted = true
  vim.api.nvim_win_set_buf(0, bufnr)
  local pos = (item.selectionRange or item.range).start
  local row = math.min(pos.line + 1, vim.api.nvim_buf_line_count(bufnr))
  local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, false)[1] or ""
  local target = { row, byte_col(line, pos.character, encoding) }
  vim.api.nvim_win_set_cursor(0, target)
  vim.cmd("normal! zv")
  -- From a picker whose prompt is in Insert mode (telescope's): Insert mode ends after
  -- this returns and, like <Esc>, moves the cursor one column left, off the name. Put it
  -- back once Insert mode is over.
  if vim.api.nvim_get_mode().mode:sub(1, 1) == "i" then
    local win = vim.api.nvim_get_current_win()
    vim.api.nvim_create_autocmd("InsertLeave", {
      once = true,
      callback = function()
        if vim.api.nvim_win_is_valid(win) and vim.api.nvim_win_get_buf(win) == bufnr then
          pcall(vim.api.nvim_win_set_cursor, win, target)
        end
      end,
    })
  end
end

--- Items as quickfix entries (for a "send to quickfix" action).
function M.to_qf(items)
  local qf = {}
  for _, item in ipairs(items) do
    local lnum, col = M.position(item)
    qf[#qf + 1] = { filename = M.filename(item), lnum = lnum, col = col + 1, text = M.format(item) }
  end
  return qf
end

---@class semcode.SearchState
---@field query string
---@field items table[]
---@field reranked boolean
---@field pending boolean   another update (the reranked list) will follow
---@field notices string[]
---@field error string|nil
---@field search_id any

---@class semcode.Session
local Session = {}
Session.__index = Session

--- A live search: `set_query` on every keystroke, `on_update(state)` on every list.
---@param opts {client?: vim.lsp.Client, on_update: fun(state: semcode.SearchState), debounce_ms?: integer, params?: table}
function M.session(opts)
  local self = setmetatable({
    client = opts.client,
    on_update = opts.on_update,
    debounce_ms = opts.debounce_ms or config.options.debounce_ms,
    params = vim.tbl_extend("force", { limit = config.options.limit }, config.options.search or {},
      opts.params or {}),
    query = nil,
    gen = 0, -- bumped per query: responses of older generations are dropped
    request_id = nil,
    search_id = nil, -- the search whose rerank may still be pending
    timer = nil,
    closed = false,
  }, Session)
  return self
end

function Session:_client()
  if not self.client or self.client.is_stopped and self.client:is_stopped() then
    self.client = client_mod.get()
  end
  return self.client
end

function Session:_emit(state)
  if not self.closed then
    self.on_update(state)
  end
end

-- Stop what the previous query started: its in-flight request (the server answers it
-- with RequestCancelled) and its pending rerank.
function Session:_supersede()
  if self.request_id and self.client then
    client_mod.cancel(self.client, self.request_id)
  end
  self.request_id = nil
  if self.search_id ~= nil then
    M.forget(self.search_id)
    -- A new semcode/search supersedes on the server already; an explicit cancel covers
    -- the case where no new search follows (prompt cleared, picker closed).
    if self.client then
      client_mod.notify(self.client, "semcode/cancelSearch", { searchId = self.search_id })
    end
    self.search_id = nil
  end
end

--- Set the query; the search starts after the debounce. Same text: no-op.
function Session:set_query(query)
  query = query or ""
  if query == self.query or self.closed then
    return
  end
  self.query = query
  self.gen = self.gen + 1
  local gen = self.gen
  self:_supersede()
  if self.timer then
    self.timer:stop()
  end
  if vim.trim(query) == "" then
    self:_emit({ query = query, items = {}, reranked = false, pending = false, notices = {} })
    return
  end
  if self.debounce_ms <= 0 then
    self:_send(gen)
    return
  end
  self.timer = self.timer or vim.uv.new_timer()
  self.timer:start(self.debounce_ms, 0, vim.schedule_wrap(function()
    self:_send(gen)
  end))
end

function Session:_send(gen)
  if gen ~= self.gen or self.closed then
    return
  end
  local client = self:_client()
  if not client then
    self:_emit({ query = self.query, items = {}, reranked = false, pending = false, notices = {},
      error = "semcode is not running: open a file in a workspace first" })
    return
  end
  local query = self.query
  local params = vim.tbl_extend("force", self.params, { query = query })
  self.request_id = client_mod.request(client, "semcode/search", params, function(err, result)
    if gen ~= self.gen or self.closed then
      return -- superseded: a newer query owns the list
    end
    self.request_id = nil
    if err then
      if err.code ~= REQUEST_CANCELLED then
        self:_emit({ query = query, items = {}, reranked = false, pending = false, notices = {},
          error = err.message or vim.inspect(err) })
      end
      return
    end
    local pending = result.rerankPending == true
    self:_emit({ query = query, items = result.items or {}, reranked = result.reranked == true,
      pending = pending, notices = result.notices or {}, search_id = result.searchId, mode = result.mode })
    if pending then
      self.search_id = result.searchId
      M.await_refined(result.searchId, function(refined)
        if gen ~= self.gen or self.closed then
          return
        end
        self.search_id = nil
        self:_emit({ query = query, items = refined.items or result.items or {}, reranked = refined.reranked == true,
          pending = false, notices = result.notices or {}, search_id = result.searchId,
          cancelled = refined.cancelled, error = refined.error })
      end)
    end
  end)
  if not self.request_id then
    self:_emit({ query = query, items = {}, reranked = false, pending = false, notices = {},
      error = "semcode: the server refused the request (is it still running?)" })
  end
end

--- Stop everything this session started.
function Session:close()
  if self.closed then
    return
  end
  self:_supersede()
  self.closed = true
  if self.timer then
    self.timer:stop()
    self.timer:close()
    self.timer = nil
  end
end

--- One search, no UI: `cb(state)` once with the final list. Waits for the reranked list
--- up to `wait_ms` (then gives the first-stage one), for pickers that cannot update.
---@param query string
---@param opts {wait_ms?: integer, params?: table, client?: vim.lsp.Client}|nil
---@param cb fun(state: semcode.SearchState)
---@return semcode.Session
function M.run(query, opts, cb)
  opts = opts or {}
  local wait_ms = opts.wait_ms or config.options.rerank_wait_ms
  local done, timer = false, nil
  local session
  local function finish(state)
    if done then
      return
    end
    done = true
    if timer then
      timer:stop()
      timer:close()
    end
    session:close()
    cb(state)
  end
  session = M.session({
    client = opts.client,
    debounce_ms = 0,
    params = opts.params,
    on_update = function(state)
      if not state.pending then
        finish(state)
      elseif not timer then
        timer = vim.uv.new_timer()
        timer:start(wait_ms, 0, vim.schedule_wrap(function()
          -- Too slow: show the first stage; finish() closes the session, which stops
          -- the rerank we no longer wait for.
          finish(vim.tbl_extend("force", state, { pending = false, timed_out = true }))
        end))
      end
    end,
  })
  session:set_query(query)
  return session
end

--- `semcode/related` for the symbol at the cursor; `cb(state)`.
function M.related(opts, cb)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local client = opts.client or client_mod.get(bufnr)
  if not client then
    cb({ items = {}, notices = {}, error = "semcode is not attached to this buffer" })
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.limit = opts.limit or config.options.limit
  client_mod.request(client, "semcode/related", params, function(err, result)
    if err then
      cb({ items = {}, notices = {}, error = err.message })
      return
    end
    cb({ items = result.items or {}, notices = result.notices or {}, reranked = false, pending = false })
  end, bufnr)
end

return M
