"""Backend-alone timing on a GPU: 7B-shaped random Llama in bf16, 4k prefill, reuse after a one-token append, decode."""
import importlib.util, json, sys, time
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM
spec = importlib.util.spec_from_file_location("prefix_cache", __file__.replace("bench/gpu_backend.py", "backends/prefix_cache.py"))
pc = importlib.util.module_from_spec(spec); sys.modules["prefix_cache"] = pc; spec.loader.exec_module(pc)
cfg = LlamaConfig(vocab_size=32016, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=16384,
                  rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0})
torch.manual_seed(0)
t = time.perf_counter()
with torch.device("cuda"):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
print("init_s", round(time.perf_counter() - t, 1), flush=True)
kw = "cache" if "cache" in __import__("inspect").signature(model.forward).parameters else "past_key_values"
ids = torch.randint(10, 32000, (1, 4097), device="cuda")
def sync(): torch.cuda.synchronize()
out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "transformers": __import__("transformers").__version__}
store = pc.PrefixCache(64 * 2**30, pc.bytes_per_token(cfg, 2))
with torch.inference_mode():
    for _ in range(2):  # warm-up, then measured
        c = DynamicCache(config=cfg); sync(); t = time.perf_counter()
        model(input_ids=ids[:, :4096], use_cache=True, logits_to_keep=1, **{kw: c}); sync()
        out["prefill_4096_ms"] = round((time.perf_counter() - t) * 1000, 1)
    store.put(ids[0, :4096].tolist(), c)
    times = []
    for _ in range(5):
        sync(); t = time.perf_counter()
        reused, keep = store.take(ids[0, :4097].tolist())  # one token typed: reuse 4096, feed 1
        model(input_ids=ids[:, keep:4097], use_cache=True, logits_to_keep=1, **{kw: reused}); sync()
        times.append((time.perf_counter() - t) * 1000)
        store.put(ids[0, :4097].tolist(), reused)
    out["reuse_after_one_token_append_ms"] = round(sorted(times)[2], 2)
    out["reused_tokens"] = keep
    step = ids[:, 100:101]
    sync(); t = time.perf_counter()
    for _ in range(32):
        model(input_ids=step, use_cache=True, **{kw: reused})
    sync()
    out["decode_ms_per_token_at_4k"] = round((time.perf_counter() - t) * 1000 / 32, 2)
    out["kv_bytes_per_token"] = pc.bytes_per_token(cfg, 2)
print(json.dumps(out))
