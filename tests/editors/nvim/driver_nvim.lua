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

function M.run(fn, watchdog_ms)
  vim.defer_fn(function()
    finish(false, "watchdog: no result after " .. watchdog_ms .. " ms")
  end, watchdog_ms)
  co = coroutine.create(fn)
  vim.schedule(resume)
end

return M
