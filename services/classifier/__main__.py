"""``python -m services.classifier``: the classifier in one uvicorn process (development).

Production: gunicorn with deploy/gunicorn/classifier.py.
"""

from shared.devserver import main as _serve


def main() -> None:
    _serve("classifier", 8002)


if __name__ == "__main__":
    main()
