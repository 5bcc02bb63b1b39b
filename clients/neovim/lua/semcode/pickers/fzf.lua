-- The fzf-lua picker: live search with `fzf_live` (fzf itself does no filtering there,
-- so the server's order is kept; `--no-sort` guards the fixed-list case).
--
-- fzf_live asks for a list per query and cannot swap it later, so each query waits (up
-- to `rerank_wait_ms`) for the reranked list. Lines are "path:line:col: text", the
-- format fzf-lua's builtin previewer understands; the item is looked up by line.
local config = require("semcode.config")
local search = require("semcode.search")

local M = {}

local function line_for(item)
  local lnum, col = search.position(item)
  local path = vim.fn.fnamemodify(search.filename(item), ":~:.")
  local name = item.name ~= "" and item.name or "<chunk>"
  local tag = (type(item.content) == "string" and item.content ~= "code") and (" [" .. item.content .. "]") or ""
  return ("%s:%d:%d: %s [%s]%s %s"):format(path, lnum, col + 1, name, search.kind_name(item.kind),
    tag, vim.trim(item.preview or ""))
end

local function actions_for(lookup)
  local function jumper(how)
    return function(selected)
      local item = selected and lookup[selected[1]]
      if item then
        search.jump(item, how)
      end
    end
  end
  return {
    ["default"] = jumper("edit"),
    ["ctrl-s"] = jumper("split"),
    ["ctrl-v"] = jumper("vsplit"),
    ["ctrl-t"] = jumper("tab"),
  }
end

function M.search(opts)
  local fzf = require("fzf-lua")
  local lookup = {}
  local current -- the running search: a new query supersedes it
  local end_list -- ends the list fzf is reading for the current query
  fzf.fzf_live(function(args)
    -- Newer fzf-lua passes {query, ...}; older passed the query string.
    local query = type(args) == "table" and args[1] or args or ""
    return function(cb)
      if current then
        current:close()
      end
      -- The superseded search will not answer now: end its list (fzf has moved on).
      if end_list then
        end_list()
      end
      local open = true
      end_list = function()
        if open then
          open = false
          cb(nil)
        end
      end
      if vim.trim(query) == "" then
        end_list()
        return
      end
      current = search.run(query, { params = opts.params }, function(state)
        if not open then
          return
        end
        for _, item in ipairs(state.items) do
          local line = line_for(item)
          lookup[line] = item
          cb(line)
        end
        -- Notices after the results: the best result stays the one <CR> picks at once.
        for _, notice in ipairs(state.notices or {}) do
          cb("# " .. notice)
        end
        end_list()
      end)
    end
  end, {
    prompt = "semcode> ",
    query = opts.query,
    -- The keystroke debounce: fzf waits this long before it asks for a query's list, so
    -- a fast typist's intermediate queries are never searched.
    query_delay = config.options.debounce_ms > 0 and config.options.debounce_ms or nil,
    exec_empty_query = false,
    previewer = "builtin",
    fzf_opts = { ["--no-sort"] = true },
    actions = actions_for(lookup),
  })
end

function M.list(opts)
  local fzf = require("fzf-lua")
  local lookup, lines = {}, {}
  for _, item in ipairs(opts.items or {}) do
    local line = line_for(item)
    lookup[line] = item
    lines[#lines + 1] = line
  end
  fzf.fzf_exec(lines, {
    prompt = (opts.title or "semcode") .. "> ",
    previewer = "builtin",
    fzf_opts = { ["--no-sort"] = true },
    actions = actions_for(lookup),
  })
end

return M
