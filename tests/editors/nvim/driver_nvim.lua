-- Runs a test script inside headless nvim as a coroutine, so that between its steps nvim's main
-- loop reads typed keys (nvim_input) and LSP messages. Writes {ok, error, results} as JSON to
-- $CODE_LLAMA_NVIM_RESULT (with when each wait ended) and quits; a watchdog fails the run if it hangs.
local M = { results = {}, step = "start", timings = {} }
local started = vim.uv.now()
local result_path = assert(os.getenv("CODE_LLAMA_NVIM_RESULT"), "CODE_LLAMA_NVIM_RESULT is not set")
local finished = false

local function finish(ok, err)
  if finished then
    return
  end
  finished = true
  local file = assert(io.open(result_path, "w"))
  file:write(vim.json.encode({ ok = ok, error = err, step = M.step, results = M.results, timings = M.timings }))
  file:close()
  vim.cmd(ok and "qall!" or "cquit! 2")
end

local co
local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(false, debug.traceback(co, tostring(err)))
  elseif coroutine.status(co) == "dead" then
    finish(true)
  end
end

--- Yield to nvim's main loop until `cond()` is truthy; return its value.
function M.wait_until(what, cond, timeout_ms)
  M.step = what
  local deadline = vim.uv.now() + (timeout_ms or 20000)
  while true do
    local ok, value = pcall(cond)
    if ok and value then
      M.timings[#M.timings + 1] = { what, vim.uv.now() - started } -- ms since start: where a slow run spends it
      return value
    end
    if vim.uv.now() > deadline then
      error("timed out waiting for " .. what .. (ok and "" or (": " .. tostring(value))), 0)
    end
    vim.defer_fn(resume, 20)
    coroutine.yield()
  end
end

--- Let nvim's main loop run for `ms` (for things that must *not* happen).
function M.sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

-- What the user sees -------------------------------------------------------------------

--- The ghost text in the current buffer: {row, col, text, pos, marks} (nil: none).
function M.ghost()
  local marks = vim.api.nvim_buf_get_extmarks(0, require("code_llama.ghost").ns, 0, -1, { details = true })
  if not marks[1] then
    return nil
  end
  local _, row, col, details = unpack(marks[1])
  local lines = { details.virt_text[1][1] }
  for _, virt_line in ipairs(details.virt_lines or {}) do
    lines[#lines + 1] = virt_line[1][1]
  end
  return { row = row, col = col, text = table.concat(lines, "\n"), marks = #marks, pos = details.virt_text_pos }
end

--- The floating window: {text, title, filetype} (nil: none).
function M.float()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    local config = vim.api.nvim_win_get_config(win)
    if config.relative ~= "" then
      local buf = vim.api.nvim_win_get_buf(win)
      return { text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), "\n"),
               filetype = vim.bo[buf].filetype, title = config.title and config.title[1][1] }
    end
  end
end

function M.run(fn, watchdog_ms)
  vim.defer_fn(function()
    finish(false, "watchdog: no result after " .. watchdog_ms .. " ms")
  end, watchdog_ms)
  co = coroutine.create(fn)
  vim.schedule(resume)
end

return M
