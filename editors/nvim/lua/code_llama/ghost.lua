-- Ghost text: a suggestion drawn with extmarks (first line inline at the cursor, the rest as
-- virtual lines below it), and inserting all of it or its next line or word.
local api = vim.api
local M = {}

M.ns = api.nvim_create_namespace("code_llama_ghost")
api.nvim_set_hl(0, "CodeLlamaGhost", { link = "Comment", default = true })

--- Draw `text` at 0-based (row, col); replaces what this buffer showed before. Accepting
--- replaces `replace_len` bytes after col (closers an auto-pairs plugin inserted): where the
--- first line ends with them, they are not drawn twice (the buffer's own show in their place).
function M.show(buf, row, col, text, replace_len)
  M.clear(buf)
  local lines = vim.split(text, "\n", { plain = true })
  if (replace_len or 0) > 0 then
    local line = api.nvim_buf_get_lines(buf, row, row + 1, true)[1]
    local replaced = line:sub(col + 1, col + replace_len)
    if #replaced > 0 and #lines[1] >= #replaced and lines[1]:sub(-#replaced) == replaced then
      lines[1] = lines[1]:sub(1, #lines[1] - #replaced)
    end
  end
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], "CodeLlamaGhost" } }
  end
  return api.nvim_buf_set_extmark(buf, M.ns, row, col, {
    virt_text = { { lines[1], "CodeLlamaGhost" } },
    virt_text_pos = "inline",
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
  })
end

function M.clear(buf)
  if api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  end
end

--- The part of `text` that accepting `what` ("all" | "line" | "word") inserts.
--- A line is the text up to its end (a suggestion that starts with a line break: that break
--- and the next line); a word is leading white space (line breaks included) and then a run of
--- word characters or a run of other non-blank characters.
function M.part(text, what)
  if what == "all" then
    return text
  elseif what == "line" then
    local first = text:match("^[^\n]+")
    return first or text:match("^\n[^\n]*")
  end
  local space = text:match("^%s*")
  local rest = text:sub(#space + 1)
  return space .. (rest:match("^[%w_]+") or rest:match("^[^%w_%s]+") or "")
end

--- Insert `part` at the cursor of `win`, replacing `replace_len` bytes after it (the rest of
--- the line that the server's range covers, e.g. a closing bracket); the cursor goes after it.
function M.insert(win, part, replace_len)
  local buf = api.nvim_win_get_buf(win)
  local row, col = unpack(api.nvim_win_get_cursor(win))
  row = row - 1
  local line = api.nvim_buf_get_lines(buf, row, row + 1, true)[1]
  local end_col = math.min(col + (replace_len or 0), #line)
  local lines = vim.split(part, "\n", { plain = true })
  api.nvim_buf_set_text(buf, row, col, row, end_col, lines)
  local last = #lines == 1 and col + #lines[1] or #lines[#lines]
  api.nvim_win_set_cursor(win, { row + #lines, last })
end

return M
