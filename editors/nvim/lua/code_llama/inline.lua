-- Inline completion without nvim's own (before 0.12): textDocument/inlineCompletion on typing,
-- after a debounce, with the previous request cancelled, drawn as ghost text.
local api = vim.api
local ghost = require("code_llama.ghost")
local util = require("code_llama.util")

local M = {}
M.AUTOMATIC, M.INVOKED = 2, 1 -- lsp.InlineCompletionTriggerKind

---@class code_llama.Item
---@field text string   the whole suggestion
---@field row integer   0-based position where it starts (bytes)
---@field col integer
---@field replace_len integer bytes after the request's cursor that accepting replaces

local Session = {}
Session.__index = Session

--- Per-buffer state. `client` needs :request(method, params, handler, bufnr) -> ok, id and
--- :cancel_request(id), and offset_encoding (an LSP client, or a fake in tests).
function M.new(buf, client, opts)
  return setmetatable({
    buf = buf,
    client = client,
    debounce_ms = opts.debounce_ms,
    enabled = opts.enabled or function() return true end,
    timer = nil,
    seq = 0, -- bumped by every new request and every edit: a late answer with an old seq is dropped
    pending = nil, -- id of the request in flight
    items = {},
    index = 1,
    shown = nil, -- the remaining text on screen
  }, Session)
end

function Session:stop_timer()
  if self.timer then
    self.timer:stop()
    self.timer:close()
    self.timer = nil
  end
end

function Session:cancel()
  self:stop_timer()
  self.seq = self.seq + 1
  if self.pending then
    util.call(self.client, "cancel_request", self.pending)
    self.pending = nil
  end
end

--- Ask again after `debounce_ms` without a newer keystroke; a newer call restarts the wait.
function Session:schedule()
  self:cancel()
  self.timer = vim.uv.new_timer()
  self.timer:start(self.debounce_ms, 0, vim.schedule_wrap(function()
    self:stop_timer()
    self:request(M.AUTOMATIC) -- InsertLeave and BufLeave cancel the timer: we are still typing here
  end))
end

function Session:request(kind)
  self:cancel()
  local seq = self.seq
  local win = api.nvim_get_current_win()
  local params = vim.lsp.util.make_position_params(win, self.client.offset_encoding)
  params.context = { triggerKind = kind }
  local cursor = api.nvim_win_get_cursor(win)
  local ok, id = util.call(self.client, "request", "textDocument/inlineCompletion", params, function(err, result)
    if seq ~= self.seq then
      return -- superseded or cancelled
    end
    self.pending = nil
    if err or not result then
      return
    end
    self:set_items(result.items or result, cursor[1] - 1, cursor[2])
  end, self.buf)
  if ok then
    self.pending = id
  end
end

--- Turn the server's items into ghost text (rows/cols in bytes).
function Session:set_items(raw_items, row, col)
  local items = {}
  for _, raw in ipairs(raw_items) do
    local text = type(raw.insertText) == "table" and raw.insertText.value or raw.insertText
    local item = { text = text, row = row, col = col, replace_len = 0 }
    if raw.range then
      item.row = raw.range.start.line
      item.col = util.byte_col(self.buf, raw.range.start, self.client.offset_encoding)
      if raw.range["end"].line == row then
        item.replace_len = math.max(0, util.byte_col(self.buf, raw.range["end"], self.client.offset_encoding) - col)
      end
    end
    if text ~= "" then
      items[#items + 1] = item
    end
  end
  self.items, self.index = items, 1
  self:render()
end

--- What the user typed since `item` starts (nil: the cursor is before it).
function Session:typed(item, row, col)
  if row < item.row or (row == item.row and col < item.col) then
    return nil
  end
  return table.concat(api.nvim_buf_get_text(self.buf, item.row, item.col, row, col, {}), "\n")
end

--- Typed text is a strict beginning of the suggestion: the rest is still to be shown.
local function fits(typed, text)
  return typed ~= nil and #typed < #text and text:sub(1, #typed) == typed
end

--- Show the current item minus what was typed since it started; false when it no longer fits.
function Session:render()
  local win = vim.fn.bufwinid(self.buf)
  local item = self.items[self.index]
  if not item or win == -1 then
    return self:dismiss()
  end
  local row, col = unpack(api.nvim_win_get_cursor(win))
  local typed = self:typed(item, row - 1, col)
  if not fits(typed, item.text) then
    return self:dismiss()
  end
  self.shown = item.text:sub(#typed + 1)
  self.shown_at = { row - 1, col, api.nvim_buf_get_changedtick(self.buf) }
  local replace_len = math.max(0, item.col + item.replace_len - col) -- what is left of it after typing
  ghost.show(self.buf, row - 1, col, self.shown, row - 1 == item.row and replace_len or 0)
  return true
end

function Session:dismiss()
  self.items, self.shown, self.shown_at = {}, nil, nil
  ghost.clear(self.buf)
  return false
end

--- Text changed in insert mode: keep a suggestion the user is typing through (the rest is
--- shown at once, no request), otherwise drop it and ask again after the debounce.
function Session:on_change()
  local current = self.items[self.index]
  local win = vim.fn.bufwinid(self.buf)
  if current and win ~= -1 then
    local row, col = unpack(api.nvim_win_get_cursor(win))
    local keep, index = {}, 1
    for _, item in ipairs(self.items) do
      if fits(self:typed(item, row - 1, col), item.text) then
        keep[#keep + 1] = item
        index = item == current and #keep or index
      end
    end
    if keep[1] then
      self:cancel()
      self.items, self.index = keep, index
      return self:render()
    end
  end
  self:dismiss()
  self:cancel()
  if self.enabled() then
    self:schedule()
  end
end

--- The cursor moved without an edit (arrows, mouse): the suggestion no longer applies.
function Session:on_move()
  local at = self.shown_at
  if not at or api.nvim_buf_get_changedtick(self.buf) ~= at[3] then
    return -- an edit: on_change decides
  end
  local row, col = unpack(api.nvim_win_get_cursor(0))
  if row - 1 ~= at[1] or col ~= at[2] then
    self:dismiss()
  end
end

--- Insert all / the next line / the next word of the shown suggestion; false if none is shown.
function Session:accept(what)
  if not self.shown then
    return false
  end
  local item = self.items[self.index]
  local part = ghost.part(self.shown, what)
  local whole = part == self.shown
  ghost.insert(api.nvim_get_current_win(), part, whole and item.replace_len or 0)
  if whole then
    self:dismiss()
  else
    self:render() -- the rest, right away (TextChangedI then finds it typed through)
  end
  return true
end

function Session:cycle(delta)
  if #self.items < 2 then
    return false
  end
  self.index = (self.index - 1 + delta) % #self.items + 1
  return self:render()
end

function Session:detach()
  self:cancel()
  self:dismiss()
end

--- A session for `buf`, fed by its insert-mode autocommands until `client` detaches.
function M.attach(buf, client, opts)
  local session = M.new(buf, client, opts)
  local group = api.nvim_create_augroup("code_llama_buf_" .. buf, { clear = true })
  local function on(events, fn)
    api.nvim_create_autocmd(events, { group = group, buffer = buf, callback = fn })
  end
  on("TextChangedI", function() session:on_change() end)
  on("CursorMovedI", function() session:on_move() end)
  on({ "InsertLeave", "BufLeave" }, function() session:detach() end)
  on("LspDetach", function(args)
    if args.data.client_id == client.id then
      session:detach()
      api.nvim_del_augroup_by_id(group)
      if opts.on_detach then
        opts.on_detach()
      end
    end
  end)
  return session
end

return M
