# The complaints image: workers (default), the codec server, and the setup job. It installs with the
# Makefile's own steps (`make runtime`), so the image and a developer's machine install the same way.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 complaints

WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY eventlog ./eventlog
COPY audit ./audit
COPY cli ./cli
COPY dev ./dev
COPY codec ./codec
COPY identity ./identity
COPY customer ./customer
COPY webhooks ./webhooks
COPY worker.py starter.py settings.py logs.py ./
COPY deploy ./deploy
RUN make runtime VENV=/opt/venv PYTHON=python3.11

ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER complaints
CMD ["python", "-m", "worker"]
