"""Tokens/s of the public PyTorch TTT reference (ttt-lm-pytorch's ttt.py) on this machine.

Usage: /usr/bin/python3 reference_ttt.py PATH/TO/ttt.py [linear|mlp] [SEQ_LEN] [TEXT_FILE] [bench|125m]
Needs Debian's python3-torch and a fast BLAS (see bench/README.md); bench/fetch-reference.sh gets ttt.py. `shim/` stands in for the few `transformers`
names ttt.py imports. Presets: `bench` = byte-level vocab 256, hidden 256, SwiGLU 704, 4 layers, 4 heads;
`125m` = the reference's own 125m sizes with the Llama vocab (32000). Both: mini-batch 16, Mamba backbone.
Prints one JSON line, including which BLAS library torch reached.
"""
import json, os, sys, time
import torch
here = os.path.dirname(os.path.abspath(__file__))
ttt_path = os.path.abspath(sys.argv[1])
kind = sys.argv[2] if len(sys.argv) > 2 else 'linear'
L = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
text = (sys.argv[4] if len(sys.argv) > 4 else '') or os.path.join(here, '..', 'assets', 'corpus', 'kjv.txt')
preset = sys.argv[5] if len(sys.argv) > 5 else 'bench'
sys.path.insert(0, os.path.join(here, 'shim')); sys.path.insert(0, os.path.dirname(ttt_path))
from ttt import TTTForCausalLM, TTTConfig
torch.set_num_threads(os.cpu_count() or 1)
torch.manual_seed(0)
sizes = {'bench': dict(vocab_size=256, hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4),
         '125m': dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12)}[preset]
cfg = TTTConfig(**sizes, ttt_layer_type=kind, ttt_base_lr=1.0 if kind == 'linear' else 0.1, pre_conv=True,
                share_qk=True, use_gate=True, mini_batch_size=16, max_position_embeddings=L)
model = TTTForCausalLM(cfg).eval()
if preset == 'bench':
    ids = torch.tensor(list(open(text, 'rb').read(L)), dtype=torch.long).unsqueeze(0)
else:
    ids = torch.randint(3, sizes['vocab_size'], (1, L), generator=torch.Generator().manual_seed(0))
blas = 'unknown'
try:
    blas = os.path.realpath('/usr/lib/x86_64-linux-gnu/libblas.so.3')
except OSError:
    pass
with torch.no_grad():
    model.lm_head(model.model(input_ids=ids[:, :256]).last_hidden_state)  # warm-up
    t = time.time()
    logits = model.lm_head(model.model(input_ids=ids).last_hidden_state)
    dt = time.time() - t
print(json.dumps({"impl": "ttt-lm-pytorch", "kind": "ttt-" + kind, "preset": preset, "tokens": L,
                  "seconds": round(dt, 3), "tokens_per_s": round(L / dt, 1), "threads": torch.get_num_threads(),
                  "torch": torch.__version__, "blas": blas}))
