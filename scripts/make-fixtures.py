"""Parity fixtures from the public reference implementations: test/fixtures/parity/<name>/{config.json,
model.safetensors, golden.json}. See docs/fixtures.md.

Usage: /usr/bin/python3 scripts/make-fixtures.py [--reference-dir DIR] [--out DIR] [--only NAME ...] [--seed N]

The references are never committed here. They are read from --reference-dir (default
~/.cache/ttt-workbench/reference), which must hold, or gets by `git clone` when the network allows:
  ttt-lm-pytorch/ttt.py     github.com/test-time-training/ttt-lm-pytorch  (TTT-Linear, TTT-MLP: TTTForCausalLM)
  mamba-minimal/model.py    github.com/johnma2006/mamba-minimal           (Mamba)
The Llama fixture uses `transformers`' LlamaForCausalLM where that package is installed, and otherwise
`llama_reference` below, a line-by-line transcription of its eager forward (RMSNorm, RoPE with rotate_half,
SwiGLU, tied head); the sliding-window logits use the same model with a banded causal mask.

Every fixture: 2 layers, width 64, 4 heads, SwiGLU 160, vocabulary 96, float32; 53 random input ids. Weights are
drawn from torch.Generator seeded with --seed (default 0) plus the fixture's index, input ids from seed + 100:
matrices N(0, 1/fan_in), norm weights 1 + N(0, 0.2²), other vectors N(0, 0.2²), Mamba's A_log as the reference
makes it. TTT fixtures also hold the logits of token-by-token decoding after a 32-token prefill (the reference's
TTTCache path, primal form; rows for positions 31..51); the Llama fixture the logits with a sliding window of 16 tokens. golden.json records
the seed, the sizes and the reference's commit under "made_by".
"""
import argparse
import importlib.util
import json
import math
import os
import struct
import subprocess
import sys
import types

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCES = {
    'ttt-lm-pytorch': ('https://github.com/test-time-training/ttt-lm-pytorch', 'cd831db10c8c9a0f6340f02da5613316a8a92b67', 'ttt.py'),
    'mamba-minimal': ('https://github.com/johnma2006/mamba-minimal', '03de542a36d873f6e6c4057ad687278cc6ae944d', 'model.py'),
}
SIZES = dict(vocab_size=96, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4)
LENGTH, PREFILL, WINDOW = 53, 32, 16

TTT = {
    'ttt-linear-mamba-backbone': dict(ttt_layer_type='linear', ttt_base_lr=1.0, backbone='mamba'),
    'ttt-linear-transformer-backbone': dict(ttt_layer_type='linear', ttt_base_lr=1.0, backbone='transformer'),
    'ttt-mlp-mamba-backbone': dict(ttt_layer_type='mlp', ttt_base_lr=0.1, backbone='mamba'),
    'ttt-mlp-transformer-backbone': dict(ttt_layer_type='mlp', ttt_base_lr=0.1, backbone='transformer'),
}
NAMES = list(TTT) + ['llama', 'mamba']


# --- references --------------------------------------------------------------------------------------------

def reference_file(ref_dir, name):
    """The reference's file in ref_dir, cloned at the pinned commit when it is missing."""
    url, commit, file = REFERENCES[name]
    path = os.path.join(ref_dir, name, file)
    if not os.path.exists(path):
        repo = os.path.join(ref_dir, name)
        try:
            subprocess.run(['git', 'clone', '--quiet', url, repo], check=True)
            subprocess.run(['git', '-C', repo, 'checkout', '--quiet', commit], check=True)
        except (subprocess.CalledProcessError, FileNotFoundError) as error:
            sys.exit(f'make-fixtures: {path} is missing and cloning {url} failed ({error}); put the file there')
    return path


def load_module(name, path, extra_paths=()):
    for p in extra_paths:
        sys.path.insert(0, p)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def einops_stand_in():
    """The three einops functions mamba-minimal calls, for machines without einops (patterns of named axes)."""
    module = types.ModuleType('einops')

    def letters(pattern):
        sides = pattern.split('->')
        names = sorted({n for side in sides for part in side.split(',') for n in part.split()})
        table = {n: chr(ord('a') + i) for i, n in enumerate(names)}
        return ['' .join(table[n] for n in part.split()) for part in sides[0].split(',')], ''.join(table[n] for n in sides[1].split())

    def einsum(*args):
        *tensors, pattern = args
        inputs, output = letters(pattern)
        return torch.einsum(','.join(inputs) + '->' + output, *tensors)

    def rearrange(x, pattern):
        (source,), target = letters(pattern)
        return x.permute(*[source.index(c) for c in target])

    def repeat(x, pattern, **sizes):
        source, target = (s.split() for s in pattern.split('->'))
        shape = [sizes[n] if n not in source else x.shape[source.index(n)] for n in target]
        view = [1 if n not in source else x.shape[source.index(n)] for n in target]
        return x.reshape(view).expand(shape).clone()

    module.einsum, module.rearrange, module.repeat = einsum, rearrange, repeat
    return module


def git_commit(ref_dir, name):
    repo = os.path.join(ref_dir, name)
    try:
        return subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return REFERENCES[name][1] + ' (pinned; the folder is not a git clone)'


# --- weights -----------------------------------------------------------------------------------------------

def randomize(named_params, generator, keep=()):
    """Matrices N(0, 1/fan_in); norm weights 1 + N(0, 0.2²); other vectors N(0, 0.2²); names in `keep` untouched."""
    with torch.no_grad():
        for name, p in named_params:
            if any(k in name for k in keep):
                continue
            noise = torch.randn(p.shape, generator=generator)
            if p.dim() >= 2:
                fan_in = p.shape[-2] if name.endswith(('W1', 'W2')) else math.prod(p.shape[1:])
                p.copy_(noise / math.sqrt(fan_in))
            elif 'norm' in name and name.endswith('weight'):
                p.copy_(1 + 0.2 * noise)
            else:
                p.copy_(0.2 * noise)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * (-len(raw) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)) + raw + b''.join(blobs))


def flat(t):
    return [round(float(v), 7) for v in t.reshape(-1).tolist()]


def write_fixture(out, name, config, weights, golden):
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config, f, indent=1)
    write_safetensors(os.path.join(folder, 'model.safetensors'), weights)
    with open(os.path.join(folder, 'golden.json'), 'w') as f:
        json.dump(golden, f)
    print(f'{folder}: {len(weights)} tensors, logits {golden["logits_shape"]}')


# --- TTT (ttt-lm-pytorch) ----------------------------------------------------------------------------------

def make_ttt(name, spec, ttt_path, generator, ids):
    shim = os.path.join(ROOT, 'bench', 'shim')
    ttt = load_module('ttt', ttt_path, [shim, os.path.dirname(ttt_path)])
    mamba = spec['backbone'] == 'mamba'
    config = {'architecture': 'ttt', **SIZES, 'rms_norm_eps': 1e-6, 'tie_word_embeddings': True, 'rope_theta': 10000.0,
              'use_gate': mamba, 'share_qk': mamba, 'ttt_layer_type': spec['ttt_layer_type'], 'ttt_base_lr': spec['ttt_base_lr'],
              'mini_batch_size': 16, 'pre_conv': mamba, 'conv_kernel': 4}
    keys = {k: v for k, v in config.items() if k != 'architecture'}
    model = ttt.TTTForCausalLM(ttt.TTTConfig(**keys, max_position_embeddings=LENGTH)).eval()
    randomize(model.named_parameters(), generator)
    # TTTModel then the head, as TTTForCausalLM.forward does (bench/shim's output classes are plain dicts)
    def run(input_ids, cache=None):
        hidden = model.model(input_ids=input_ids, cache_params=cache, use_cache=cache is not None).last_hidden_state
        return model.lm_head(hidden)[0]

    with torch.no_grad():
        logits = run(ids)
        # token by token after a prefill: the reference's cached path (the primal form inside a mini-batch)
        # rows: positions PREFILL - 1 (the prefill's last row) .. LENGTH - 2 (the last token's own logits unused)
        cache = ttt.TTTCache(model.model, 1)
        decoded = [run(ids[:, :PREFILL], cache)[-1]]
        decoded += [run(ids[:, t:t + 1], cache)[-1] for t in range(PREFILL, LENGTH - 1)]
    decoded = torch.stack(decoded)
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith('lm_head.')}
    golden = {'input_ids': ids[0].tolist(), 'logits_shape': list(logits.shape), 'logits': flat(logits),
              'decode_prefill': PREFILL, 'decode_logits_shape': list(decoded.shape), 'decode_logits': flat(decoded)}
    return config, weights, golden


# --- Llama (Hugging Face LlamaForCausalLM) -----------------------------------------------------------------

class llama_reference:
    """LlamaForCausalLM's eager forward (transformers/models/llama/modeling_llama.py), tied head, no biases."""

    def __init__(self, c):
        self.c = c
        d, f, n, v = c['hidden_size'], c['intermediate_size'], c['num_hidden_layers'], c['vocab_size']
        self.params = {'model.embed_tokens.weight': torch.empty(v, d), 'model.norm.weight': torch.empty(d)}
        for i in range(n):
            p = f'model.layers.{i}.'
            for proj in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
                self.params[p + f'self_attn.{proj}.weight'] = torch.empty(d, d)
            self.params[p + 'mlp.gate_proj.weight'] = torch.empty(f, d)
            self.params[p + 'mlp.up_proj.weight'] = torch.empty(f, d)
            self.params[p + 'mlp.down_proj.weight'] = torch.empty(d, f)
            self.params[p + 'input_layernorm.weight'] = torch.empty(d)
            self.params[p + 'post_attention_layernorm.weight'] = torch.empty(d)

    def rms_norm(self, x, w):  # LlamaRMSNorm
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c['rms_norm_eps']))

    @staticmethod
    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def forward(self, ids, window=None):
        c, P = self.c, self.params
        H, T = c['num_attention_heads'], ids.shape[1]
        hd = c['hidden_size'] // H
        inv_freq = 1.0 / (c['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))  # LlamaRotaryEmbedding
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        allowed = (j <= i) if window is None else (j <= i) & (j > i - window)
        mask = torch.zeros(T, T).masked_fill(~allowed, float('-inf'))
        x = P['model.embed_tokens.weight'][ids[0]]
        for layer in range(c['num_hidden_layers']):
            p = f'model.layers.{layer}.'
            h = self.rms_norm(x, P[p + 'input_layernorm.weight'])
            q, k, v = (F.linear(h, P[p + f'self_attn.{n}.weight']).view(T, H, hd).transpose(0, 1) for n in ('q_proj', 'k_proj', 'v_proj'))
            q, k = q * cos + self.rotate_half(q) * sin, k * cos + self.rotate_half(k) * sin  # apply_rotary_pos_emb
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
            x = x + F.linear((att @ v).transpose(0, 1).reshape(T, -1), P[p + 'self_attn.o_proj.weight'])
            h = self.rms_norm(x, P[p + 'post_attention_layernorm.weight'])
            x = x + F.linear(F.silu(F.linear(h, P[p + 'mlp.gate_proj.weight'])) * F.linear(h, P[p + 'mlp.up_proj.weight']), P[p + 'mlp.down_proj.weight'])
        return F.linear(self.rms_norm(x, P['model.norm.weight']), P['model.embed_tokens.weight'])


def make_llama(generator, ids):
    config = {'architecture': 'llama', **SIZES, 'num_key_value_heads': 4, 'rms_norm_eps': 1e-6, 'rope_theta': 10000.0, 'tie_word_embeddings': True}
    model = llama_reference(config)
    randomize(sorted(model.params.items()), generator)
    with torch.no_grad():
        logits = model.forward(ids)
        window_logits = model.forward(ids, WINDOW)
        try:  # the library itself, where it is installed: the transcription must agree with it
            from transformers import LlamaConfig, LlamaForCausalLM
            keys = {k: v for k, v in config.items() if k != 'architecture'}
            hf = LlamaForCausalLM(LlamaConfig(**keys, max_position_embeddings=LENGTH, attention_bias=False)).eval()
            hf.load_state_dict(model.params, strict=False)
            hf.tie_weights()
            diff = (hf(input_ids=ids).logits[0] - logits).abs().max().item()
            print(f'llama: transformers LlamaForCausalLM agrees to {diff:.2e}')
            if diff > 1e-5:
                sys.exit(f'make-fixtures: llama_reference differs from transformers by {diff}')
        except ImportError:
            print('llama: transformers is not installed; using the transcription of LlamaForCausalLM')
    golden = {'input_ids': ids[0].tolist(), 'logits_shape': list(logits.shape), 'logits': flat(logits),
              'window': WINDOW, 'window_logits': flat(window_logits)}
    return config, dict(model.params), golden


# --- Mamba (mamba-minimal) ---------------------------------------------------------------------------------

def make_mamba(mamba_path, generator, ids):
    try:
        import einops  # noqa: F401
    except ImportError:
        sys.modules['einops'] = einops_stand_in()
    ref = load_module('mamba_minimal', mamba_path)
    config = {'architecture': 'mamba', 'd_model': 64, 'n_layer': 2, 'vocab_size': 96, 'd_state': 16, 'expand': 2, 'd_conv': 4,
              'dt_rank': 4, 'tie_embeddings': True, 'rms_norm_eps': 1e-5}
    model = ref.Mamba(ref.ModelArgs(d_model=64, n_layer=2, vocab_size=96, d_state=16, expand=2, d_conv=4, dt_rank=4)).eval()
    randomize(model.named_parameters(), generator, keep=('A_log',))
    with torch.no_grad():
        logits = model(ids)[0]
    weights = {'backbone.' + k: v for k, v in model.state_dict().items() if not k.startswith('lm_head.')}
    golden = {'input_ids': ids[0].tolist(), 'logits_shape': list(logits.shape), 'logits': flat(logits)}
    return config, weights, golden


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--reference-dir', default=os.path.join(os.path.expanduser('~'), '.cache', 'ttt-workbench', 'reference'))
    parser.add_argument('--out', default=os.path.join(ROOT, 'test', 'fixtures', 'parity'))
    parser.add_argument('--only', nargs='*', choices=NAMES)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for index, name in enumerate(NAMES):
        if args.only and name not in args.only:
            continue
        generator = torch.Generator().manual_seed(args.seed + index)
        ids = torch.randint(0, SIZES['vocab_size'], (1, LENGTH), generator=torch.Generator().manual_seed(args.seed + 100))
        if name in TTT:
            ref = 'ttt-lm-pytorch'
            config, weights, golden = make_ttt(name, TTT[name], reference_file(args.reference_dir, ref), generator, ids)
        elif name == 'llama':
            ref = 'transformers LlamaForCausalLM (scripts/make-fixtures.py llama_reference)'
            config, weights, golden = make_llama(generator, ids)
        else:
            ref = 'mamba-minimal'
            config, weights, golden = make_mamba(reference_file(args.reference_dir, ref), generator, ids)
        made_by = {'script': 'scripts/make-fixtures.py', 'reference': ref, 'seed': args.seed + index, 'input_seed': args.seed + 100,
                   'sizes': {**SIZES, 'length': LENGTH}, 'torch': torch.__version__}
        if ref in REFERENCES:
            made_by['commit'] = git_commit(args.reference_dir, ref)
        write_fixture(args.out, name, config, weights, {'made_by': made_by, **golden})


if __name__ == '__main__':
    main()
