"""Peak host memory of loading a released checkpoint with `mmdiff.hf.from_hf`, against a naive loader.

Writes a random LLaDA-format checkpoint (float32 shards with an index, as the releases ship them) to a temporary folder,
then in a fresh process per loader measures the peak resident memory (ru_maxrss) above the process's memory after its
imports:
- `from_hf(..., dtype=bfloat16)`: builds the Denoiser on the meta device, streams one tensor at a time, casts, assigns;
- naive: reads every shard into one float32 state dict, then casts it to bfloat16 (a float32 copy of the whole model).
On a CPU target the loaded bfloat16 model itself lives in host memory, so `from_hf`'s peak is the model plus what is in
flight; on a GPU target only the in-flight part is in host memory. Prints a table and writes
benchmarks/results/hf_load.md and .json (`--quick`: a small checkpoint, *.quick.* files).
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine_info, command_line   # noqa: E402


def llada_config(d, layers, heads, mlp, vocab) -> dict:
    return dict(model_type='llada', architectures=['LLaDAModelLM'], d_model=d, n_heads=heads, n_kv_heads=heads, n_layers=layers,
                mlp_hidden_size=mlp, vocab_size=vocab, embedding_size=vocab, max_sequence_length=4096, rope_theta=500000.0,
                rms_norm_eps=1e-5, weight_tying=False, block_type='llama', layer_norm_type='rms', activation_type='silu',
                include_bias=False, include_qkv_bias=False, rope=True, alibi=False, torch_dtype='float32', mask_token_id=vocab - 1)


def write_checkpoint(folder: Path, cfg: dict, n_shards: int, seed: int = 0) -> dict:
    "Random float32 LLaDA-format weights in `n_shards` shards + index; one shard in memory at a time."
    from safetensors.torch import save_file
    from mmdiff.hf import LLaDA
    from mmdiff.model import ModelConfig
    mc, _ = LLaDA().model_config(cfg, folder / 'config.json')
    d, hid, V, kv = mc.d_model, mc.hidden, mc.vocab_size, mc.kv_heads * mc.dh
    shapes = {}
    for name, (param, role) in LLaDA().tensors(mc, cfg).items():
        if 'wte' in name or name.endswith('transformer.ff_out.weight'): shapes[name] = (V, d)
        elif role in 'kv' and role: shapes[name] = (kv, d)
        elif 'ff_proj' in name or 'up_proj' in name: shapes[name] = (hid, d)
        elif '.ff_out' in name: shapes[name] = (d, hid)
        elif name.endswith('norm.weight') or 'ln_f' in name: shapes[name] = (d,)
        else: shapes[name] = (d, d)
    names = list(shapes)
    per = -(-sum(torch.Size(s).numel() for s in shapes.values()) // n_shards)
    g = torch.Generator().manual_seed(seed)
    wm, shard, size, j, total = {}, {}, 0, 1, 0
    folder.mkdir(parents=True, exist_ok=True)
    def flush():
        nonlocal shard, size, j
        fn = f'model-{j:05d}-of-{n_shards:05d}.safetensors'
        save_file(shard, str(folder / fn)); wm.update({k: fn for k in shard}); shard, size, j = {}, 0, j + 1
    for n in names:
        shard[n] = torch.randn(shapes[n], generator=g) * 0.02
        size += shard[n].numel(); total += shard[n].numel()
        if size >= per and j < n_shards: flush()
    if shard: flush()
    real = j - 1
    if real != n_shards:                                                     # rename to the real count
        for f in sorted(folder.glob('model-*.safetensors')):
            k = int(f.name[6:11]); new = f'model-{k:05d}-of-{real:05d}.safetensors'; f.rename(folder / new)
        wm = {k: f'{v[:15]}{real:05d}.safetensors' for k, v in wm.items()}
    (folder / 'model.safetensors.index.json').write_text(json.dumps({'metadata': {'total_size': 4 * total}, 'weight_map': wm}))
    (folder / 'config.json').write_text(json.dumps(cfg))
    return dict(params=total, shards=real, fp32_bytes=4 * total,
                largest_shard_bytes=max(f.stat().st_size for f in folder.glob('model-*.safetensors')),
                largest_tensor_bytes=4 * max(torch.Size(s).numel() for s in shapes.values()))


def rss_kb() -> int:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'): return int(line.split()[1])
    return 0


def child(method: str, folder: str):
    "Run in a fresh process: load with `method`, print JSON with the peak RSS above the post-import baseline."
    from safetensors.torch import load_file
    from mmdiff.hf import from_hf
    base = rss_kb()
    t0 = time.perf_counter()
    if method == 'from_hf':
        m = from_hf(folder, dtype=torch.bfloat16, device='cpu')
        n = sum(p.numel() for p in m.parameters())
    else:
        sd = {}
        for f in sorted(Path(folder).glob('model-*.safetensors')): sd.update(load_file(str(f)))   # float32 copy of everything
        bf = {k: v.to(torch.bfloat16) for k, v in sd.items()}
        n = sum(v.numel() for v in bf.values())
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(method=method, peak_above_base_mb=(peak - base) / 1024, seconds=dt, params=n)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='a small checkpoint (a few seconds)')
    p.add_argument('--d-model', type=int, default=None); p.add_argument('--n-layer', type=int, default=None)
    p.add_argument('--mlp', type=int, default=None); p.add_argument('--vocab', type=int, default=None)
    p.add_argument('--shards', type=int, default=4)
    p.add_argument('--out-dir', default=str(HERE / 'results'))
    p.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child: return child(*a.child)
    prof = dict(d_model=256, n_layer=2, mlp=704, vocab=8192) if a.quick else dict(d_model=1536, n_layer=8, mlp=4096, vocab=32000)
    for k, v in prof.items():
        if getattr(a, k) is None: setattr(a, k, v)
    heads = max(1, a.d_model // 128)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        info = write_checkpoint(Path(tmp) / 'ckpt', llada_config(a.d_model, a.n_layer, heads, a.mlp, a.vocab), a.shards)
        for method in ('from_hf', 'naive'):
            r = subprocess.run([sys.executable, __file__, '--child', method, str(Path(tmp) / 'ckpt')], capture_output=True, text=True,
                               env={**os.environ, 'OMP_NUM_THREADS': '1'})
            if r.returncode: raise SystemExit(r.stderr[-3000:])
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    mb = lambda b: b / 2 ** 20
    bf16_mb = mb(2 * info['params'])
    lines = [f"# Loading a released checkpoint: peak host memory", '', f"`{command_line(argv)}`", '',
             f"Checkpoint: LLaDA format, {info['params'] / 1e6:.0f} M parameters (d {a.d_model}, {a.n_layer} layers, MLP {a.mlp}, "
             f"vocab {a.vocab}), float32, {info['shards']} shards; largest shard {mb(info['largest_shard_bytes']):.0f} MB, "
             f"largest tensor {mb(info['largest_tensor_bytes']):.0f} MB, whole model {mb(info['fp32_bytes']):.0f} MB in float32, "
             f"{bf16_mb:.0f} MB in bfloat16. Target: bfloat16 on the CPU (so the loaded model itself is in host memory).", '',
             '| loader | peak host memory above the imports (MB) | minus the bf16 model (MB) | load time (s) |', '|---|---|---|---|']
    for r in rows:
        name = 'mmdiff.hf.from_hf (meta build, stream, cast, assign)' if r['method'] == 'from_hf' else 'naive: all shards as one fp32 state dict, then cast'
        lines.append(f"| {name} | {r['peak_above_base_mb']:.0f} | {r['peak_above_base_mb'] - bf16_mb:.0f} | {r['seconds']:.1f} |")
    lines += ['', "`from_hf`'s excess over the bf16 model is what a GPU target would need in host memory: compare it with the "
                  "largest tensor and the largest shard above; the naive loader's is the float32 copy of the whole model."]
    text = '\n'.join(lines) + '\n'
    print(text)
    out = Path(a.out_dir); out.mkdir(parents=True, exist_ok=True)
    stem = 'hf_load.quick' if a.quick else 'hf_load'
    (out / f'{stem}.md').write_text(text)
    (out / f'{stem}.json').write_text(json.dumps(dict(checkpoint=info, rows=rows, args=vars(a), machine=machine_info(torch.device('cpu'))), indent=2))


if __name__ == '__main__':
    main()
