"""``python -m services.embedder``: the embedder in one uvicorn process (development).

Production: gunicorn with deploy/gunicorn/embedder.py.
"""

from shared.devserver import main as _serve


def main() -> None:
    _serve("embedder", 8001)


if __name__ == "__main__":
    main()
