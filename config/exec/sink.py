# An exec outlet script: appends each batch to the file named by its argument,
# syncs it, then acknowledges it (the protocol in outlets/src/exec/README.md).
import json, os, sys

os.makedirs(os.path.dirname(sys.argv[1]) or ".", exist_ok=True)
batch = []
for line in sys.stdin:
    if line.strip():
        batch.append(json.loads(line))
        continue
    with open(sys.argv[1], "a") as out:
        out.writelines(json.dumps(record) + "\n" for record in batch)
        out.flush(); os.fsync(out.fileno())
    print(json.dumps({"ok": True}), flush=True)
    batch = []
