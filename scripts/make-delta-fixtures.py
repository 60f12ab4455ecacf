#!/usr/bin/python3
"""Parity fixtures for the delta-rule family (engine/models/delta-net.ts), from fla's own pure-PyTorch code.

Usage: /usr/bin/python3 scripts/make-delta-fixtures.py FLA_DIR [OUT_DIR]
  FLA_DIR  a checkout of fla-org/flash-linear-attention (never committed here)
  OUT_DIR  default test/fixtures/parity

Runs on CPU with Debian's python3-torch (1.13), without triton: fla's package __init__ imports triton, so the
reference pieces are loaded from their files directly:
  fla/ops/delta_rule/naive.py         delta_rule_recurrence              (DeltaNet's recurrence)
  fla/ops/gated_delta_rule/naive.py   naive_recurrent_gated_delta_rule   (Gated DeltaNet's recurrence)
  fla/ops/gated_delta_rule/gate.py    naive_gdn_gate                     (g = −exp(A_log)·softplus(a + dt_bias))
  fla/modules/layernorm.py            rms_norm_ref                       (RMSNorm, also the fused residual form)
  fla/modules/layernorm_gated.py      rms_norm_ref                       (FusedRMSNormGated: norm(o)·w·silu(g))
The last three files import triton at the top, so only those functions are taken out of them (by `ast`) and run
with torch. The rest follows fla/layers/delta_net.py, fla/layers/gated_deltanet.py and fla/models/*/modeling_*.py
line by line: ShortConvolution (causal depthwise conv1d, no bias, SiLU), fla's l2norm (x / sqrt(Σx² + 1e-6), as
its kernels with use_qk_l2norm_in_kernel), sigmoid β (× 2 with allow_neg_eigval), GatedMLP (SwiGLU), the head.

Every weight is random (A_log, dt_bias and all norms included). golden.json holds input_ids, logits [L, V] of one
full forward, and decode_logits: a prefill of `decode_prefill` tokens, then one token at a time through the
carried state (conv tails and S), rows for positions decode_prefill − 1 … L − 1.
"""
import ast
import importlib.util
import json
import math
import os
import struct
import sys
import types

import torch
import torch.nn.functional as F

FIXTURES = [
    # name, seed, config (fla keys); tiny sizes, every family option the engine implements
    ('gated-deltanet', 11, dict(model_type='gated_deltanet', hidden_size=32, num_heads=2, head_dim=16, expand_v=2, use_gate=True,
                                num_hidden_layers=2, vocab_size=64, intermediate_size=None, hidden_ratio=2, norm_eps=1e-6)),
    ('gated-deltanet-nogate', 12, dict(model_type='gated_deltanet', hidden_size=32, num_heads=4, head_dim=8, expand_v=1, use_gate=False,
                                       allow_neg_eigval=True, conv_size=3, num_hidden_layers=2, vocab_size=64, intermediate_size=48,
                                       tie_word_embeddings=True, norm_eps=1e-5)),
    ('delta-net', 13, dict(model_type='delta_net', hidden_size=32, num_heads=4, expand_k=1, expand_v=1, use_gate=False,
                           num_hidden_layers=2, vocab_size=64, intermediate_size=64, norm_eps=1e-6)),
    ('delta-net-gate-expand-v', 14, dict(model_type='delta_net', hidden_size=32, num_heads=2, expand_k=1, expand_v=2, use_gate=True,
                                         use_beta=False, qk_activation='elu', qk_norm='sum', num_hidden_layers=2, vocab_size=64,
                                         intermediate_size=None, hidden_ratio=2, norm_eps=1e-6)),
    ('delta-net-noconv', 15, dict(model_type='delta_net', hidden_size=32, num_heads=2, expand_k=0.5, expand_v=1, use_short_conv=False,
                                  qk_activation='relu', allow_neg_eigval=True, num_hidden_layers=2, vocab_size=64, intermediate_size=48,
                                  norm_eps=1e-6)),
]
SEQ_LEN = 80  # crosses the engine's 64-token pieces and ends mid-piece
PREFILL = 32


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_function(path, name):
    """One top-level function of a file whose imports need triton: its source, run with torch, F and rearrange."""
    tree = ast.parse(open(path).read())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    scope = {'torch': torch, 'F': F, 'rearrange': sys.modules['einops'].rearrange}
    exec(compile(ast.Module(body=[node], type_ignores=[]), path, 'exec'), scope)
    return scope[name]


def ensure_einops():
    """naive.py imports einops only for its chunk forms; a stand-in suffices for the recurrences when it is absent."""
    try:
        import einops  # noqa: F401
    except ImportError:
        stub = types.ModuleType('einops')

        def rearrange(*_args, **_kwargs):
            raise RuntimeError('einops is not installed (needed only by the chunk forms, not used here)')
        stub.rearrange = rearrange
        sys.modules['einops'] = stub


class Reference:
    def __init__(self, fla):
        ensure_einops()
        self.delta_rule_recurrence = load_module(f'{fla}/fla/ops/delta_rule/naive.py', 'fla_delta_naive').delta_rule_recurrence
        self.gated_recurrence = load_module(f'{fla}/fla/ops/gated_delta_rule/naive.py', 'fla_gated_naive').naive_recurrent_gated_delta_rule
        self.gdn_gate = load_function(f'{fla}/fla/ops/gated_delta_rule/gate.py', 'naive_gdn_gate')
        self.rms_norm = load_function(f'{fla}/fla/modules/layernorm.py', 'rms_norm_ref')
        self.rms_norm_gated = load_function(f'{fla}/fla/modules/layernorm_gated.py', 'rms_norm_ref')


def dims(c):
    """Head sizes as fla's layers compute them."""
    C, H = c['hidden_size'], c['num_heads']
    if c['model_type'] == 'delta_net':
        key_dim, value_dim = int(C * c.get('expand_k', 1.0)), int(C * c.get('expand_v', 1.0))
        return key_dim, value_dim, key_dim // H, value_dim // H
    dk = c.get('head_dim', 256)
    dv = int(dk * c.get('expand_v', 2.0))
    return H * dk, H * dv, dk, dv


def intermediate(c):
    # ref: fla/modules/mlp.py GatedMLP.__init__
    if c.get('intermediate_size') is not None:
        return c['intermediate_size']
    ratio = c.get('hidden_ratio') or 4
    return 256 * ((int(c['hidden_size'] * ratio * 2 / 3) + 255) // 256)


def random_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    C, H, V, L = c['hidden_size'], c['num_heads'], c['vocab_size'], c['num_hidden_layers']
    key_dim, value_dim, dk, dv = dims(c)
    I, k = intermediate(c), c.get('conv_size', 4)
    gated = c['model_type'] == 'gated_deltanet'
    w = {}

    def normal(shape, std):
        return torch.randn(*shape, generator=g) * std

    def linear(out_f, in_f):
        return normal((out_f, in_f), in_f ** -0.5)

    def norm(n):
        return 1 + normal((n,), 0.2)

    # a tied head reads the embedding too: smaller values keep its logits O(1), like the untied ones
    w['model.embeddings.weight'] = normal((V, C), 0.2 if c.get('tie_word_embeddings', False) else 1.0)
    for l in range(L):
        p, a = f'model.layers.{l}.', f'model.layers.{l}.attn.'
        w[p + 'attn_norm.weight'] = norm(C)
        w[a + 'q_proj.weight'] = linear(key_dim, C)
        w[a + 'k_proj.weight'] = linear(key_dim, C)
        w[a + 'v_proj.weight'] = linear(value_dim, C)
        if gated or c.get('use_beta', True):
            w[a + 'b_proj.weight'] = linear(H, C)
        if gated:
            w[a + 'a_proj.weight'] = linear(H, C)
            w[a + 'A_log'] = torch.log(torch.rand(H, generator=g) * 3.5 + 0.5)  # A in [0.5, 4]
            w[a + 'dt_bias'] = normal((H,), 1.0)
        if c.get('use_short_conv', True):
            for name, D in (('q', key_dim), ('k', key_dim), ('v', value_dim)):
                w[a + f'{name}_conv1d.weight'] = normal((D, 1, k), 0.5)
        if c.get('use_gate', gated):
            w[a + 'g_proj.weight'] = linear(value_dim, C)
        w[a + 'o_norm.weight'] = norm(dv)
        w[a + 'o_proj.weight'] = linear(C, value_dim)
        w[p + 'mlp_norm.weight'] = norm(C)
        w[p + 'mlp.gate_proj.weight'] = linear(I, C)
        w[p + 'mlp.up_proj.weight'] = linear(I, C)
        w[p + 'mlp.down_proj.weight'] = linear(C, I)
    w['model.norm.weight'] = norm(C)
    if not c.get('tie_word_embeddings', False):
        w['lm_head.weight'] = linear(V, C)
    return w


def l2norm(x):
    # ref: fla/modules/l2norm.py l2norm_fwd_kernel: x · 1/sqrt(Σx² + eps), eps = 1e-6
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-6)


def short_conv(x, weight, tail, activation):
    """ShortConvolution over x [T, D] continued from the last k−1 inputs `tail` [k−1, D]: causal depthwise conv1d."""
    k = weight.shape[-1]
    xs = torch.cat([tail, x], 0)  # [k−1+T, D]
    y = F.conv1d(xs.t().unsqueeze(0), weight, groups=weight.shape[0]).squeeze(0).t()  # [T, D]
    return (F.silu(y) if activation else y), xs[-(k - 1):]


def layer_forward(ref, c, w, l, x, state):
    """One fla block on x [T, C] with carried state {'S', 'conv'}; returns (x, state)."""
    p, a = f'model.layers.{l}.', f'model.layers.{l}.attn.'
    eps = c.get('norm_eps', 1e-6)
    H = c['num_heads']
    key_dim, value_dim, dk, dv = dims(c)
    gated = c['model_type'] == 'gated_deltanet'
    act = 'silu' if gated else c.get('qk_activation', 'silu')
    qk_norm = 'l2' if gated else c.get('qk_norm', 'l2')
    T = x.shape[0]
    # ref: GatedDeltaNetBlock.forward / DeltaNetBlock.forward: residual, attn_norm, attn, fused mlp_norm(residual), mlp
    residual = x
    h = ref.rms_norm(x, w[p + 'attn_norm.weight'], None, eps=eps)
    q, k, v = (F.linear(h, w[a + n + '_proj.weight']) for n in 'qkv')
    conv = state['conv']
    if c.get('use_short_conv', True):
        q, cq = short_conv(q, w[a + 'q_conv1d.weight'], conv[0], act == 'silu')
        k, ck = short_conv(k, w[a + 'k_conv1d.weight'], conv[1], act == 'silu')
        v, cv = short_conv(v, w[a + 'v_conv1d.weight'], conv[2], True)
        conv = (cq, ck, cv)
    else:
        if act == 'silu':
            q, k = F.silu(q), F.silu(k)
        v = F.silu(v)
    q, k, v = q.view(1, T, H, dk), k.view(1, T, H, dk), v.view(1, T, H, dv)
    if act == 'relu':
        q, k = q.relu(), k.relu()
    elif act == 'elu':
        q, k = F.elu(q) + 1, F.elu(k) + 1  # elu_p1
    if qk_norm == 'sum':
        q, k = q / q.sum(-1, keepdim=True), k / k.sum(-1, keepdim=True)  # sum_norm
    else:
        q, k = l2norm(q), l2norm(k)  # use_qk_l2norm_in_kernel
    if gated or c.get('use_beta', True):
        beta = F.linear(h, w[a + 'b_proj.weight']).sigmoid().view(1, T, H)
    else:
        beta = torch.ones(1, T, H)
    if c.get('allow_neg_eigval', False):
        beta = beta * 2
    if gated:
        g = ref.gdn_gate(F.linear(h, w[a + 'a_proj.weight']).view(1, T, H), w[a + 'A_log'], w[a + 'dt_bias'])
        o, S = ref.gated_recurrence(q, k, v, beta, g, initial_state=state['S'], output_final_state=True)  # [1, T, H, dv]
    else:
        t = lambda z: z.transpose(1, 2).contiguous()  # noqa: E731  [B, H, T, d]
        o, S = ref.delta_rule_recurrence(t(q), t(k), t(v), beta.transpose(1, 2).contiguous(), initial_state=state['S'])
        o = o.transpose(1, 2)  # [1, T, H, dv]
    if c.get('use_gate', gated):
        gate = F.linear(h, w[a + 'g_proj.weight']).view(1, T, H, dv)
        o = ref.rms_norm_gated(o, w[a + 'o_norm.weight'], None, z=gate, eps=eps, norm_before_gate=True)
    else:
        o = ref.rms_norm(o, w[a + 'o_norm.weight'], None, eps=eps)
    h = F.linear(o.reshape(T, value_dim), w[a + 'o_proj.weight'])
    h, residual = ref.rms_norm(h, w[p + 'mlp_norm.weight'], None, residual=residual, eps=eps, prenorm=True)
    h = F.linear(F.silu(F.linear(h, w[p + 'mlp.gate_proj.weight'])) * F.linear(h, w[p + 'mlp.up_proj.weight']), w[p + 'mlp.down_proj.weight'])
    return residual + h, {'S': S, 'conv': conv}


def initial_state(c):
    key_dim, value_dim, dk, dv = dims(c)
    k = c.get('conv_size', 4)
    return [{'S': torch.zeros(1, c['num_heads'], dk, dv),
             'conv': (torch.zeros(k - 1, key_dim), torch.zeros(k - 1, key_dim), torch.zeros(k - 1, value_dim))}
            for _ in range(c['num_hidden_layers'])]


def model_forward(ref, c, w, ids, states):
    x = w['model.embeddings.weight'][ids]
    out = []
    for l in range(c['num_hidden_layers']):
        x, s = layer_forward(ref, c, w, l, x, states[l])
        out.append(s)
    x = ref.rms_norm(x, w['model.norm.weight'], None, eps=c.get('norm_eps', 1e-6))
    head = w['model.embeddings.weight'] if c.get('tie_word_embeddings', False) else w['lm_head.weight']
    return F.linear(x, head), out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * ((8 - len(raw) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    fla, out_dir = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else 'test/fixtures/parity'
    torch.set_grad_enabled(False)
    ref = Reference(fla)
    for name, seed, config in FIXTURES:
        config = {**config, 'architectures': ['GatedDeltaNetForCausalLM' if config['model_type'] == 'gated_deltanet' else 'DeltaNetForCausalLM']}
        w = random_weights(config, seed)
        ids = torch.randint(0, config['vocab_size'], (SEQ_LEN,), generator=torch.Generator().manual_seed(seed + 1000))
        logits, _ = model_forward(ref, config, w, ids, initial_state(config))
        # decoding: prefill, then one token at a time through the carried state
        rows, states = [], initial_state(config)
        prefill, states = model_forward(ref, config, w, ids[:PREFILL], states)
        rows.append(prefill[-1:])
        for t in range(PREFILL, SEQ_LEN):
            step, states = model_forward(ref, config, w, ids[t:t + 1], states)
            rows.append(step)
        decode = torch.cat(rows, 0)
        assert all(math.isfinite(v) for v in logits.flatten().tolist())
        folder = os.path.join(out_dir, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, 'config.json'), 'w') as f:
            json.dump(config, f, indent=1)
        write_safetensors(os.path.join(folder, 'model.safetensors'), w)
        golden = {
            'input_ids': ids.tolist(),
            'logits_shape': list(logits.shape), 'logits': [round(v, 7) for v in logits.flatten().tolist()],
            'decode_prefill': PREFILL,
            'decode_logits_shape': list(decode.shape), 'decode_logits': [round(v, 7) for v in decode.flatten().tolist()],
        }
        with open(os.path.join(folder, 'golden.json'), 'w') as f:
            json.dump(golden, f)
        print(f'{name}: logits {list(logits.shape)}, |decode − full| {float((decode[1:] - logits[PREFILL:]).abs().max()):.2e}')


if __name__ == '__main__':
    main()
