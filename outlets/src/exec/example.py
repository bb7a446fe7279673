# A databay exec outlet in Python: append each batch to a file, then acknowledge it.
import json, os, sys

batch = []
for line in sys.stdin:
    if line.strip():  # one JSON value per record
        batch.append(json.loads(line))
        continue
    with open(sys.argv[1], "a") as out:  # a blank line ends the batch
        out.writelines(json.dumps(record) + "\n" for record in batch)
        out.flush(); os.fsync(out.fileno())
    print(json.dumps({"ok": True}), flush=True)
    batch = []
