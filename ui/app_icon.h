#pragma once
// Parley's icon: two speech bubbles on a blue tile, drawn with QPainter at every size asked
// (the same design as resources/parley.svg, which the .desktop file uses).
#include <QIcon>

namespace parley::ui {
QIcon appIcon();
}
