#pragma once
// The text the crash-safety helper (store_writer.cpp) writes, so the test knows what every
// committed message and every prefix of the streamed reply must be.
#include <QString>

namespace parley::test {

inline QString crashQuestion(int i) { return QStringLiteral("Question %1: what does ünïcødé → look like after a crash?").arg(i); }
inline QString crashAnswer(int i) {
    return QStringLiteral("Answer %1.\n\n```cpp\nint x = %1; // kept\n```\nDone — ✓").arg(i);
}
// Piece k of the streamed reply.
inline QString crashPiece(int k) {
    QString p = QStringLiteral("tok%1").arg(k);
    if (k % 5 == 0) p += QStringLiteral("·ü→");
    p += (k % 9 == 8) ? QStringLiteral("\n") : QStringLiteral(" ");
    return p;
}
inline QString crashReply(int pieces) {
    QString s;
    for (int k = 0; k < pieces; ++k) s += crashPiece(k);
    return s;
}

} // namespace parley::test
