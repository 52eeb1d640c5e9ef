"""Run in a fresh interpreter: time one import set, print JSON. Nothing heavy is imported before t0.

    python bench/import_probe.py main FUNCTION    # functions/FUNCTION/main.py, loaded as functions-framework does
    python bench/import_probe.py floor FUNCTION   # functions_framework + the clients FUNCTION needs
"""

import sys
import time

HEAVY = (
    "google.cloud.firestore", "google.cloud.secretmanager_v1", "twilio.rest", "grpc", "flask",
    "phonenumbers", "jwt", "cryptography.fernet", "cryptography.hazmat.primitives.kdf.argon2",
)


def main() -> None:
    mode, function = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    if mode == "main":
        import importlib.util
        import os

        source = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "functions", function, "main.py"))
        spec = importlib.util.spec_from_file_location("main", source, submodule_search_locations=[os.path.dirname(source)])
        module = importlib.util.module_from_spec(spec)
        sys.path.append(os.path.dirname(source))
        sys.modules["main"] = module
        spec.loader.exec_module(module)
    elif mode == "floor":
        import functions_framework  # noqa: F401
        from google.cloud import firestore, secretmanager_v1  # noqa: F401

        if function == "send_otp":
            import twilio.rest  # noqa: F401
    else:
        raise SystemExit(f"unknown mode {mode}")
    elapsed = (time.perf_counter() - start) * 1000
    import json

    print(json.dumps({"ms": elapsed, "modules": len(sys.modules), "loaded": [m for m in HEAVY if m in sys.modules]}))


if __name__ == "__main__":
    main()
