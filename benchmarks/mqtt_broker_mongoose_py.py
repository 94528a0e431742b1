"""MQTT 3.1.1 broker: mongoose_py.mqtt.Broker with its defaults.
Usage: --port N"""
from mongoose_py.mqtt import Broker

from server_cli import parse_args


def main():
    Broker("mqtt://127.0.0.1:%d" % parse_args(1883).port).run()


if __name__ == "__main__":
    main()
