# A databay exec inlet in Python: print one JSON value per line, exit 0.
import json
import sys

for n in range(3):
    print(json.dumps({"n": n, "square": n * n}))
print("progress goes to stderr, which databay logs", file=sys.stderr)
