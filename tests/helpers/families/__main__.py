"""Build one tiny family's model folder: ``python -m helpers.families NAME OUT_DIR`` (from tests/)."""

import json
import sys
import time

from .registry import FAMILIES

if __name__ == "__main__":
    name, out = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    FAMILIES[name].builder(out)
    print(json.dumps({"family": name, "out": out, "seconds": round(time.perf_counter() - t0, 2)}))
