"""``python -m services.trainer``: the trainer in one uvicorn process (development).

Production: gunicorn with deploy/gunicorn/trainer.py.
"""

from shared.devserver import main as _serve


def main() -> None:
    _serve("trainer", 8003)


if __name__ == "__main__":
    main()
