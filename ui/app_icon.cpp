#include "ui/app_icon.h"

#include <QLinearGradient>
#include <QPainter>
#include <QPainterPath>
#include <QPixmap>

namespace parley::ui {

namespace {
// Drawn on a 256-unit canvas, as resources/parley.svg.
QPixmap draw(int size) {
    QPixmap pixmap(size, size);
    pixmap.fill(Qt::transparent);
    QPainter p(&pixmap);
    p.setRenderHint(QPainter::Antialiasing);
    p.scale(size / 256.0, size / 256.0);
    QLinearGradient tile(0, 0, 256, 256);
    tile.setColorAt(0, QColor("#4f7cff"));
    tile.setColorAt(1, QColor("#7b4dff"));
    p.setPen(Qt::NoPen);
    p.setBrush(tile);
    p.drawRoundedRect(QRectF(8, 8, 240, 240), 56, 56);

    QPainterPath front;
    front.addRoundedRect(QRectF(36, 76, 152, 92), 24, 24);
    QPainterPath tail;
    tail.moveTo(78, 160);
    tail.lineTo(78, 196);
    tail.lineTo(112, 166);
    tail.closeSubpath();
    p.setBrush(QColor(255, 255, 255, 242));
    p.drawPath(front.united(tail));

    QPainterPath back;
    back.addRoundedRect(QRectF(104, 116, 112, 74), 20, 20);
    QPainterPath backTail;
    backTail.moveTo(160, 184);
    backTail.lineTo(188, 212);
    backTail.lineTo(188, 184);
    backTail.closeSubpath();
    p.setBrush(QColor(29, 36, 80, 230));
    p.drawPath(back.united(backTail));

    p.setBrush(QColor("#4f7cff"));
    p.drawEllipse(QPointF(92, 122), 9, 9);
    p.drawEllipse(QPointF(120, 122), 9, 9);
    p.setBrush(Qt::white);
    for (int x : {148, 170, 192}) p.drawEllipse(QPointF(x, 153), 7, 7);
    return pixmap;
}
} // namespace

QIcon appIcon() {
    QIcon icon;
    for (int size : {16, 24, 32, 48, 64, 128, 256}) icon.addPixmap(draw(size));
    return icon;
}

} // namespace parley::ui
