-- Explain / ask (Markdown in a floating window) and docstring / tests (the server edits the
-- workspace through workspace/applyEdit, which nvim applies).
local api = vim.api
local util = require("code_llama.util")

local M = { float = require("code_llama.config").defaults.float } -- setup() sets the user's
local view = { win = nil, buf = nil, pending = nil } -- pending: the explain request being answered

local function notify(message, level)
  vim.notify("Code Llama: " .. message, level or vim.log.levels.INFO)
end

local function with_client(fn)
  local buf = api.nvim_get_current_buf()
  local client = util.client(buf)
  if not client then
    return notify("no code_llama server is attached to this buffer", vim.log.levels.WARN)
  end
  fn(client, buf)
end

--- Whole lines line1..line2 (1-based, as a command range gives them) as an LSP range.
function M.line_range(buf, line1, line2, encoding)
  if line2 < api.nvim_buf_line_count(buf) or vim.bo[buf].eol then
    return { start = { line = line1 - 1, character = 0 }, ["end"] = { line = line2, character = 0 } }
  end
  local last = api.nvim_buf_get_lines(buf, line2 - 1, line2, true)[1]
  return { start = { line = line1 - 1, character = 0 },
           ["end"] = { line = line2 - 1, character = vim.lsp.util.character_offset(buf, line2 - 1, #last, encoding) } }
end

local function cursor_range(client)
  return vim.lsp.util.make_range_params(0, client.offset_encoding).range
end

--- Show (or update) the Markdown window below the cursor; its title says whether the answer
--- is still being written.
function M.show(markdown, writing)
  local lines = vim.split(markdown, "\n", { plain = true })
  if not (view.buf and api.nvim_buf_is_valid(view.buf)) then
    view.buf = api.nvim_create_buf(false, true)
    vim.bo[view.buf].filetype = "markdown"
    vim.keymap.set("n", "q", M.close, { buffer = view.buf, nowait = true })
  end
  api.nvim_buf_set_lines(view.buf, 0, -1, false, lines)
  local width = 20
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  width = math.min(width, M.float.max_width, vim.o.columns - 4)
  local height = 0
  for _, line in ipairs(lines) do
    height = height + math.max(1, math.ceil(vim.fn.strdisplaywidth(line) / width))
  end
  height = math.min(height, M.float.max_height)
  local size = { width = width, height = height }
  if M.float.border ~= "none" then
    size.title = writing and " Code Llama (writing…) " or " Code Llama "
  end
  if view.win and api.nvim_win_is_valid(view.win) then
    api.nvim_win_set_config(view.win, size)
    return view.win
  end
  view.win = api.nvim_open_win(view.buf, false, vim.tbl_extend("force", size, {
    relative = "cursor", row = 1, col = 0, style = "minimal", border = M.float.border }))
  vim.wo[view.win].wrap = true
  vim.wo[view.win].conceallevel = 2
  api.nvim_create_autocmd({ "CursorMoved", "InsertEnter", "BufLeave" }, {
    buffer = api.nvim_get_current_buf(), once = true, callback = M.close })
  return view.win
end

--- Close the window; an answer still being written is cancelled ($/cancelRequest stops the model).
function M.close()
  if view.pending then
    util.call(view.pending.client, "cancel_request", view.pending.id)
    view.pending = nil
  end
  if view.win and api.nvim_win_is_valid(view.win) then
    api.nvim_win_close(view.win, true)
  end
  view.win = nil
end

--- codeLlama/partialResult {token, delta, done}: the text the answer gained, while an explanation
--- is being written. The first explain/ask token seen for a request is taken as its own; deltas of
--- any other token (an older, cancelled answer) are ignored.
function M.on_partial(_, result)
  local pending = view.pending
  local token = result and tostring(result.token) or ""
  if not pending or type(result.delta) ~= "string"
      or not (token:find("^code%-llama%-explain%-") or token:find("^code%-llama%-ask%-")) then
    return
  end
  pending.token = pending.token or token
  if pending.token == token then
    pending.text = (pending.text or "") .. result.delta
    M.show(pending.text, true)
  end
end

local function explain_range(client, buf, range, question)
  M.close() -- and stop an answer still being written
  M.show(question and "_Thinking about your question…_" or "_Reading…_", true)
  local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, range = range, question = question }
  local pending = { client = client }
  local ok, id = util.call(client, "request", "codeLlama/explain", params, function(err, result)
    if view.pending ~= pending then
      return -- closed or superseded
    end
    view.pending = nil
    if err then
      M.close()
      return notify(err.message, vim.log.levels.WARN)
    end
    M.show(result.markdown ~= "" and result.markdown or "_(no answer)_")
  end, buf)
  pending.id = ok and id or nil
  view.pending = ok and pending or nil
end

--- Explain `range` (an LSP range), or the function/class at the cursor when nil; with
--- `question`, answer that question about it instead.
function M.explain(range, question)
  with_client(function(client, buf)
    if range then
      return explain_range(client, buf, range, question)
    end
    -- The server's code action knows the function or class around the cursor.
    local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
    params.context = { diagnostics = {} }
    util.call(client, "request", "textDocument/codeAction", params, function(err, actions)
      for _, action in ipairs(not err and actions or {}) do
        local command = action.command
        if type(command) == "table" and command.command == "codeLlama.explain" then
          return explain_range(client, buf, command.arguments[2], question)
        end
      end
      notify("nothing to explain here: select code or put the cursor in a function or class",
             vim.log.levels.WARN)
    end, buf)
  end)
end

function M.ask(range, question)
  if question and question ~= "" then
    return M.explain(range, question)
  end
  vim.ui.input({ prompt = "Ask Code Llama: " }, function(input)
    if input and input ~= "" then
      M.explain(range, input)
    end
  end)
end

--- workspace/applyEdit: nvim applies the edit; a file it touched that no window shows (a
--- created or extended test file) opens in a split, so the result is seen.
function M.apply_edit(err, params, ctx, ...)
  for _, change in ipairs(params.edit.documentChanges or {}) do
    -- nvim 0.11 creates nothing for a CreateFile with ignoreIfExists; the spec says: create it
    -- unless it exists (and :w needs its folder).
    if change.kind == "create" and vim.uv.fs_stat(vim.uri_to_fname(change.uri)) == nil then
      vim.fn.mkdir(vim.fs.dirname(vim.uri_to_fname(change.uri)), "p")
      local file = io.open(vim.uri_to_fname(change.uri), "a")
      if file then
        file:close()
      end
    end
  end
  local response = vim.lsp.handlers["workspace/applyEdit"](err, params, ctx, ...)
  if not (response and response.applied) then
    return response
  end
  local created = {}
  for _, change in ipairs(params.edit.documentChanges or {}) do
    if change.kind == "create" then
      created[change.uri] = true
    end
    local buf = change.textDocument and vim.uri_to_bufnr(change.textDocument.uri)
    if buf and created[change.textDocument.uri] then
      -- The new file's text ends with a line break, which nvim keeps as 'eol': without this
      -- the buffer would end in an empty line and :w would write an extra one.
      local lines = api.nvim_buf_get_lines(buf, 0, -1, true)
      if #lines > 1 and lines[#lines] == "" then
        api.nvim_buf_set_lines(buf, -2, -1, true, {})
      end
    end
    if buf and vim.fn.bufwinid(buf) == -1 then
      vim.cmd.sbuffer(buf)
    end
  end
  return response
end

--- codeLlama.generateDocstring / codeLlama.generateTests at `range` (default: the cursor).
function M.edit(command, range, extra)
  with_client(function(client, buf)
    local arguments = { vim.uri_from_bufnr(buf), range or cursor_range(client), extra }
    util.call(client, "request", "workspace/executeCommand", { command = command, arguments = arguments },
      function(err, result)
        if err then
          notify(err.message, vim.log.levels.WARN)
        elseif result and result.applied then
          notify(result.message or "done")
        end -- a refusal was already shown by the server (window/showMessage)
      end, buf)
  end)
end

return M
