"""``python -m services.gateway``: the gateway in one uvicorn process (development).

Production: gunicorn with deploy/gunicorn/gateway.py.
"""

from shared.devserver import main as _serve


def main() -> None:
    _serve("gateway", 8000)


if __name__ == "__main__":
    main()
