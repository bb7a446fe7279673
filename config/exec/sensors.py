# An exec inlet script: each run prints one JSON reading per line and exits 0.
import json
import random
import time

for sensor in ("boiler", "attic", "cellar"):
    reading = {"sensor": sensor, "celsius": round(random.uniform(10, 30), 1), "at": time.time()}
    print(json.dumps(reading))
