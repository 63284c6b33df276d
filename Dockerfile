# The Varco gateway: MQTT ingest, access decisions and the admin API.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY varco ./varco
COPY gateway ./gateway
COPY edge_agent ./edge_agent
RUN pip install --no-cache-dir '.[gateway,edge]' && useradd --system --home /data varco \
    && mkdir -p /data && chown varco /data
USER varco
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["varco", "gateway", "--host", "0.0.0.0", "--port", "8000"]
