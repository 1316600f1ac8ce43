package netpoll

import "go.uber.org/zap/zapcore"

type zapLevel = zapcore.Level
