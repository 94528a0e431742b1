"""MQTT 3.1.1 broker: mongoose_py.mqtt.Broker with its defaults.
Usage: --port N"""
import argparse

from mongoose_py.mqtt import Broker


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=1883)
    args = ap.parse_args()
    Broker("mqtt://127.0.0.1:%d" % args.port).run()


if __name__ == "__main__":
    main()
