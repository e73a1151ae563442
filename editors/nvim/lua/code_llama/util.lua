local api = vim.api
local M = {}

M.NAME = "code_llama"
local has_011 = vim.fn.has("nvim-0.11") == 1

--- client:method(...) on 0.11+, client.method(...) on 0.10 (methods took no self there).
function M.call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

--- The code_llama client attached to `buf` (nil if none).
function M.client(buf)
  return vim.lsp.get_clients({ bufnr = buf or 0, name = M.NAME })[1]
end

--- Byte column of an LSP position on its line of `buf`.
function M.byte_col(buf, pos, encoding)
  local line = api.nvim_buf_get_lines(buf, pos.line, pos.line + 1, false)[1] or ""
  if encoding == "utf-8" then
    return math.min(pos.character, #line)
  end
  if has_011 then
    return vim.str_byteindex(line, encoding, pos.character, false)
  end
  return vim.str_byteindex(line, pos.character, encoding == "utf-16")
end

return M
