# A Docker-ready EC2-like host: the bare host (sshhost.Dockerfile) with Docker Engine and
# Compose installed from the distribution's packages as `docker_engine` installs them (the
# package pick is docker_engine.PICK_PACKAGES, verbatim: a unit test holds the two equal),
# and `admin` in the `docker` group. The sandbox's stand-in for an AMI that ships Docker:
# on it, the `docker_engine` task finds everything in place and reports `ok`.
ARG SUITE=bookworm
FROM provision/sshhost:${SUITE}
LABEL io.provision.sandbox=1
RUN apt-get update \
 && packages=$(for p in docker-compose-v2 docker-compose-plugin docker-compose; do if apt-cache show "$p" >/dev/null 2>&1; then echo "$p"; break; fi; done; if apt-cache show docker-cli >/dev/null 2>&1; then echo docker-cli; fi) \
 && apt-get install -y --no-install-recommends docker.io $packages \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && usermod -aG docker admin \
 && systemctl enable docker.service
