# An EC2-like Debian host: systemd as PID 1, sshd, a sudo-capable `admin`
# user (as on Debian's cloud images), cloud-init's final stage (the user-data
# and per-boot scripts; `cloud-init status`), and nothing else: provision
# itself installs Docker on it over SSH, so the host must start bare.
ARG SUITE=bookworm
FROM provision/debian-base:${SUITE}
ARG SUITE=bookworm
LABEL io.provision.sandbox=1
ENV DEBIAN_FRONTEND=noninteractive
COPY sources-${SUITE}.list /etc/apt/sources.list
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      systemd systemd-sysv dbus sudo openssh-server python3 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_*key* \
 && useradd --create-home --shell /bin/bash --groups sudo admin \
 && usermod --password '*' admin \
 && mkdir -p /etc/ssh/authorized_keys.d \
 && systemctl mask getty.target console-getty.service systemd-logind.service \
      systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
      systemd-remount-fs.service sys-kernel-debug.mount sys-kernel-tracing.mount \
 && systemctl enable ssh.service
COPY sudoers-admin /etc/sudoers.d/90-admin
COPY sshd-provision.conf /etc/ssh/sshd_config.d/10-provision.conf
COPY ssh-hostkeys.service cloud-final.service power-off.service apt-daily.service /etc/systemd/system/
COPY cloud-final apt-daily /usr/lib/provision/
COPY cloud-init /usr/bin/cloud-init
RUN chmod 0440 /etc/sudoers.d/90-admin \
 && chmod 0755 /usr/lib/provision/cloud-final /usr/lib/provision/apt-daily /usr/bin/cloud-init \
 && mkdir -p /var/lib/cloud/seed/nocloud \
 && systemctl mask apt-daily.timer apt-daily-upgrade.timer \
 && systemctl enable ssh-hostkeys.service cloud-final.service power-off.service apt-daily.service
ENV container=docker
STOPSIGNAL SIGRTMIN+3
EXPOSE 22
CMD ["/sbin/init"]
