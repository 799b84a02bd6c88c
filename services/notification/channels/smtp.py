"""The ``smtp`` channel: e-mail through a real SMTP server with ``smtplib``.

Settings (``CHANNELS.smtp``): ``host``, ``port`` (25), ``user`` and
``password`` (log in when a user is set), ``starttls`` (upgrade the
connection), ``ssl`` (implicit TLS, usually port 465), ``sender`` (the From
address), ``timeout_seconds`` (10). A 5xx refusal of the recipient or the
message is permanent (the message is parked at once); anything else (no
connection, a 4xx, a login failure, a timeout) is retried.
"""
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from services.notification.channels import Channel, ChannelConfigError, DeliveryError


class SmtpChannel(Channel):
    name = "smtp"
    kinds = frozenset({"email"})

    def __init__(self, settings=None):
        super().__init__(settings)
        self.host = str(self.setting("host", required=True))
        try:
            self.port = int(self.setting("port", 25))
        except (TypeError, ValueError):
            raise ChannelConfigError(f"CHANNELS.{self.name}.port must be a number")
        self.user = self.setting("user")
        self.password = self.setting("password", "")
        self.starttls = self.flag("starttls")
        self.implicit_tls = self.flag("ssl")
        if self.starttls and self.implicit_tls:
            raise ChannelConfigError(f"CHANNELS.{self.name}: starttls and ssl exclude each other")
        self.sender = str(self.setting("sender", required=True))
        self.timeout = self.number("timeout_seconds", 10)

    def email(self, message):
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        # The same Message-ID on every attempt, so a mail client folds a repeated delivery.
        mail["Message-ID"] = f"<{message.message_id}@pingxuan>"
        mail.set_content(message.body, charset="utf-8")
        return mail

    def connect(self):
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def send(self, message):
        mail = self.email(message)
        server = f"{self.host}:{self.port}"
        try:
            with self.connect() as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(str(self.user), str(self.password))
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise DeliveryError(f"smtp {server} refused the recipient: {code} {_text(reply)}",
                                permanent=500 <= code < 600)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise DeliveryError(f"smtp {server} refused the message: {exc.smtp_code} "
                                f"{_text(exc.smtp_error)}", permanent=500 <= exc.smtp_code < 600)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"smtp {server} refused the login: {exc.smtp_code}")
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp {server} answered {exc.smtp_code} {_text(exc.smtp_error)}")
        except (socket.timeout, TimeoutError):
            raise DeliveryError(f"timeout: smtp {server} did not answer within {self.timeout:g} s")
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot send through smtp {server}: {type(exc).__name__}: {exc}")
        return mail["Message-ID"]


def _text(reply):
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
