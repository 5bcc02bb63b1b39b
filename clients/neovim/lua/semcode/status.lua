-- Indexing progress and server status, for vim.notify and the statusline.
--
-- Two sources: LSP `$/progress` (Neovim stores it and fires LspProgress; we only read
-- the event) and the server's `semcode/status` push. Notifications are kept to the
-- moments a user cares about (indexing began, finished, something degraded) so a large
-- first index does not flood the message area; the statusline carries the running count.
local config = require("semcode.config")

local M = {}

-- client_id -> latest Status object (docs/protocol.md "Status")
M.statuses = {}
-- client_id -> { [token] = {title, message, percentage, done} }
M.progress = {}
-- client_id -> degraded lines already shown
local shown_degraded = {}

local function notify(msg, level)
  if config.options.progress == "notify" then
    vim.notify(msg, level or vim.log.levels.INFO, { title = "semcode" })
  end
end

--- Whether a model is missing or failed (as opposed to off, loading or loaded).
function M.has_model_problem(status)
  for _, model in pairs(status.models or {}) do
    if model.state == "missing" or model.state == "error" then
      return true
    end
  end
  return false
end

--- Handler for the `semcode/status` notification.
function M.on_status(_, status, ctx)
  if type(status) ~= "table" then
    return
  end
  local id = ctx.client_id
  local previous = M.statuses[id]
  M.statuses[id] = status
  shown_degraded[id] = shown_degraded[id] or {}
  -- Degraded because a model was set "off" is the user's choice, not news: warn only
  -- when a model is missing or broken.
  for _, line in ipairs(M.has_model_problem(status) and status.degraded or {}) do
    if not shown_degraded[id][line] then
      shown_degraded[id][line] = true
      notify("semcode: " .. line, vim.log.levels.WARN)
    end
  end
  if status.state == "error" and (not previous or previous.state ~= "error") then
    notify("semcode: server error (see :Semcode status)", vim.log.levels.ERROR)
  end
  vim.cmd("redrawstatus")
end

--- LspProgress autocmd callback (registered in init.lua).
function M.on_progress(ev)
  local data = ev.data or {}
  local client = data.client_id and vim.lsp.get_client_by_id(data.client_id)
  if not client or client.name ~= "semcode" then
    return
  end
  local params = data.params or {}
  local value = params.value
  if type(value) ~= "table" then
    return
  end
  local per_client = M.progress[client.id] or {}
  M.progress[client.id] = per_client
  local token = params.token
  if value.kind == "begin" then
    per_client[token] = { title = value.title or "semcode", message = value.message, percentage = value.percentage }
    notify(value.title or "semcode: indexing")
  elseif value.kind == "report" then
    local p = per_client[token] or { title = "semcode" }
    p.message = value.message or p.message
    p.percentage = value.percentage or p.percentage
    per_client[token] = p
  elseif value.kind == "end" then
    local p = per_client[token]
    per_client[token] = nil
    local title = p and p.title or "semcode"
    notify(title .. ": done" .. (value.message and value.message ~= "" and (" (" .. value.message .. ")") or ""))
  end
  vim.cmd("redrawstatus")
end

--- Forget a stopped client.
function M.clear(client_id)
  M.statuses[client_id] = nil
  M.progress[client_id] = nil
  shown_degraded[client_id] = nil
end

--- Statusline component: "" when no server runs, else e.g. "semcode: indexing 35%
--- 1200/3400 files", "semcode: ready", "semcode: ready (degraded)".
---@param bufnr integer|nil limit to the server attached to this buffer
function M.statusline(bufnr)
  local clients = vim.lsp.get_clients({ name = "semcode", bufnr = bufnr })
  local client = clients[1]
  if not client then
    return ""
  end
  for _, p in pairs(M.progress[client.id] or {}) do
    local text = "semcode:"
    if p.percentage then
      text = text .. (" %d%%"):format(p.percentage)
    end
    return text .. " " .. (p.message or p.title or "working")
  end
  local status = M.statuses[client.id]
  if not status then
    return "semcode: starting"
  end
  local text = "semcode: " .. (status.state or "?")
  local ws = status.workspaces and status.workspaces[1]
  if ws and ws.progress and ws.progress.message and status.state ~= "ready" then
    text = text .. " " .. ws.progress.message
  end
  if status.degraded and #status.degraded > 0 then
    text = text .. " (degraded)"
  end
  return text
end

--- A multi-line, human summary of a Status object (for :Semcode status).
function M.describe(status)
  local lines = {
    ("semcode %s (protocol %s): %s"):format(status.version or "?", tostring(status.protocolVersion or "?"),
      status.state or "?"),
  }
  for role, model in pairs(status.models or {}) do
    local detail = model.path or model.identity or ""
    if model.message and model.message ~= "" then
      detail = detail .. (detail ~= "" and " — " or "") .. model.message
    end
    lines[#lines + 1] = ("  %s: %s%s"):format(role, model.state or "?", detail ~= "" and (" " .. detail) or "")
  end
  for _, ws in ipairs(status.workspaces or {}) do
    lines[#lines + 1] = ("  %s: %s files, %s chunks, %s embedded, %s pending"):format(ws.root or "?",
      tostring(ws.files or 0), tostring(ws.chunks or 0), tostring(ws.embedded or 0),
      tostring(ws.pendingEmbeddings or 0))
    if ws.progress and ws.progress.message and ws.progress.message ~= "" then
      lines[#lines + 1] = "    " .. ws.progress.message
    end
  end
  for _, line in ipairs(status.degraded or {}) do
    lines[#lines + 1] = "  degraded: " .. line
  end
  return table.concat(lines, "\n")
end

return M
