#!/bin/bash
# Re-records every file in this folder (see README.md): real runs of four kinds of training loop,
# each one's stdout+stderr in one file, exactly as `... > x.log 2>&1` writes it.
#
#   bash tests/data/any_loop/record.sh
#
# Needs two virtual environments (never the project's .venv):
#   python3 -m venv /tmp/rec-venv && /tmp/rec-venv/bin/pip install -c constraints.txt \
#       torch==2.13.0 lightning tensorboard tqdm numpy transformers accelerate requests
#   python3 -m venv /tmp/rec-venv-tqdm && /tmp/rec-venv-tqdm/bin/pip install -c constraints.txt \
#       torch==2.13.0 lightning tensorboard tqdm           # no `rich`: Lightning falls back to tqdm
# and a nanoGPT checkout (NANOGPT, default /tmp/nanogpt, made from the mirror if missing).
# The runs happen in $WORK (default /tmp/any_loop_rec), so the paths they print are relative.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
PY=${REC_VENV:-/tmp/rec-venv}/bin/python
PY_TQDM=${REC_VENV_TQDM:-/tmp/rec-venv-tqdm}/bin/python
NANOGPT=${NANOGPT:-/tmp/nanogpt}
MIRROR=${NANOGPT_MIRROR:-/work/.mirror/karpathy+nanoGPT/repo}
WORK=${WORK:-/tmp/any_loop_rec}
export PYTHONUNBUFFERED=1

rm -rf "$WORK"
mkdir -p "$WORK"

# One tfevents file of a folder, copied under a fixed name; its original name goes to stdout.
copy_events() {  # copy_events DIR DEST
    local f
    f=$(ls "$1"/events.out.tfevents.*)
    cp "$f" "$HERE/$2"
    echo "$2 <- $f"
}

# --- 1. nanoGPT's train.py, unmodified -----------------------------------------------------------
if [ ! -f "$NANOGPT/train.py" ]; then
    mkdir -p "$NANOGPT"
    git -C "$MIRROR" archive HEAD | tar -x -C "$NANOGPT"
fi
if [ ! -f "$NANOGPT/data/shakespeare_char/train.bin" ]; then
    # Our own ~1 MB input.txt instead of the download: the common licenses + Python's pydoc topics.
    cat /usr/share/common-licenses/* "$("$PY" -c 'import pydoc_data, os; print(os.path.dirname(pydoc_data.__file__))')/topics.py" \
        > "$NANOGPT/data/shakespeare_char/input.txt"
    (cd "$NANOGPT/data/shakespeare_char" && "$PY" prepare.py)
fi
NG_ARGS=(config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=10
         --log_interval=10 --block_size=64 --batch_size=12 --n_layer=2 --n_head=4 --n_embd=64
         --lr_decay_iters=200 --dropout=0.0 --eval_interval=50)
(
    cd "$NANOGPT"
    rm -rf out-tiny out-resume
    "$PY" train.py "${NG_ARGS[@]}" --max_iters=200 --out_dir=out-tiny \
        > "$HERE/nanogpt_train.log" 2>&1
    "$PY" train.py "${NG_ARGS[@]}" --max_iters=100 --out_dir=out-resume \
        > "$HERE/nanogpt_first.log" 2>&1
    "$PY" train.py "${NG_ARGS[@]}" --init_from=resume --max_iters=200 --out_dir=out-resume \
        > "$HERE/nanogpt_resume.log" 2>&1
)

# --- 2. a HuggingFace Trainer script ----------------------------------------------------------------
(
    cd "$WORK"
    "$PY" "$HERE/hf_trainer_script.py" --output-dir hf-out > "$HERE/hf_trainer.log" 2>&1
    echo "hf-out: $(ls hf-out | tr '\n' ' ')"
    cp hf-out/checkpoint-48/trainer_state.json "$HERE/hf_trainer_state.json"
    # Killed with SIGTERM in epoch 3 (a sleep per step opens the window), then resumed.
    "$PY" "$HERE/hf_trainer_script.py" --output-dir hf-resume --sleep 0.2 \
        > "$HERE/hf_first.log" 2>&1 &
    pid=$!
    until [ -f hf-resume/checkpoint-32/trainer_state.json ]; do sleep 0.1; done
    sleep 1.2
    kill -TERM "$pid"
    wait "$pid" || echo "hf first run: rc=$?"
    echo "hf-resume after the kill: $(ls hf-resume | tr '\n' ' ')"
    "$PY" "$HERE/hf_trainer_script.py" --output-dir hf-resume --resume > "$HERE/hf_resume.log" 2>&1
    echo "hf-resume after --resume: $(ls hf-resume | tr '\n' ' ')"
)

# --- 3. a plain Lightning script with its default logger ------------------------------------------
LD="$REPO/tests/scripts/lightning_default.py"
CKPT='run/lightning_logs/version_0/checkpoints/epoch=3-step=32.ckpt'
for variant in rich tqdm; do
    if [ "$variant" = rich ]; then py=$PY; sfx=; else py=$PY_TQDM; sfx=_tqdm; fi
    mkdir -p "$WORK/lightning-$variant"
    (
        cd "$WORK/lightning-$variant"
        "$py" "$LD" --run-dir run > "$HERE/lightning_default$sfx.log" 2>&1
        "$py" "$LD" --run-dir run --max-epochs 6 --ckpt "$CKPT" \
            > "$HERE/lightning_resume$sfx.log" 2>&1
        find run -type f | sort
    )
done
copy_events "$WORK/lightning-rich/run/lightning_logs/version_0" lightning_default.tfevents
copy_events "$WORK/lightning-rich/run/lightning_logs/version_1" lightning_resume.tfevents

# --- 4. a plain PyTorch loop -------------------------------------------------------------------------
PL="$REPO/tests/scripts/plain_loop.py"
(
    cd "$WORK"
    "$PY" "$PL" --out pl > "$HERE/plain_loop.log" 2>&1
    # Killed with SIGTERM in epoch 3, then resumed from the end of epoch 2.
    "$PY" "$PL" --out pl-kill --sleep 0.1 > "$HERE/plain_loop_killed.log" 2>&1 &
    pid=$!
    until grep -q "^Epoch 2: train_loss" "$HERE/plain_loop_killed.log"; do sleep 0.05; done
    sleep 0.45
    kill -TERM "$pid"
    wait "$pid" || echo "plain_loop killed run: rc=$?"
    copy_events pl-kill/tb plain_loop_killed.tfevents
    killed=$(ls pl-kill/tb)
    "$PY" "$PL" --out pl-kill --resume > "$HERE/plain_loop_resume.log" 2>&1
    # The resumed run writes a second file beside the killed run's one.
    f=$(ls pl-kill/tb | grep -vxF "$killed")
    cp "pl-kill/tb/$f" "$HERE/plain_loop_resume.tfevents"
    echo "plain_loop_resume.tfevents <- pl-kill/tb/$f"
    "$PY" "$PL" --out pl-none --resume > "$HERE/plain_loop_nockpt.log" 2>&1 \
        || echo "plain_loop --resume without a checkpoint: rc=$?"
)
copy_events "$WORK/pl/tb" plain_loop.tfevents
