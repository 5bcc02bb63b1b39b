package com.example.queue

import scala.collection.mutable

/** A job to run. */
case class Job(id: Int, name: String)

trait Runner {
  def run(job: Job): Boolean
}

class LocalRunner(workers: Int) extends Runner {
  private val done = mutable.Set[Int]()

  def run(job: Job): Boolean = {
    done += job.id
    true
  }

  def finished: Int = done.size
}

object Queue {
  val MaxSize = 100

  def apply(jobs: Job*): Queue = new Queue(jobs.toList)
}

class Queue(jobs: List[Job]) {
  def next(): Option[Job] = jobs.headOption
}

enum Level:
  case Low, High

def main(args: Array[String]): Unit =
  println(Queue(Job(1, "a")).next())
